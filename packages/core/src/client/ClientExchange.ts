import type { IncomingHttpHeaders } from 'node:http';
import type { Dispatcher } from 'undici';

const NO_HEADERS: IncomingHttpHeaders = {};

/** The abort reason used when a body passes the size limit; see {@link ClientExchange.tooLarge}. */
const TOO_LARGE = new Error('response body too large');

/**
 * One HTTP request/response through an undici dispatcher, buffered: the lean alternative to
 * `Pool.request()` + `body.json()`. It is its own dispatch handler (no stream, no per-chunk
 * closures) and its own abort listener (`handleEvent`), so an attempt allocates this object, a
 * promise and the request options, and little else.
 */
export class ClientExchange implements Dispatcher.DispatchHandler {
  statusCode = 0;
  headers: IncomingHttpHeaders = NO_HEADERS;
  /** When the response headers arrived (clock time); 0 until then, or when not timed. */
  headersAt = 0;
  readonly promise: Promise<ClientExchange>;
  /** True when the body passed `maxBytes` and the exchange was aborted for it. */
  tooLarge = false;
  #bytes = 0;
  readonly #maxBytes: number;
  #chunks: Buffer[] | undefined;
  #first: Buffer | undefined;
  #controller: Dispatcher.DispatchController | undefined;
  #pendingAbort: Error | undefined;
  #settled = false;
  #resolve!: (value: ClientExchange) => void;
  #reject!: (reason: unknown) => void;
  /** The signal this exchange listens to (as an EventListener object), if any. */
  signal: AbortSignal | undefined;
  /** The caller's own signal, to tell a caller abort from a policy abort. */
  callerSignal: AbortSignal | undefined;
  /** Set by the owner: called when `signal` fires. A shared function, not a closure per call. */
  onSignal: ((exchange: ClientExchange) => void) | undefined;
  readonly #now: (() => number) | undefined;

  constructor(now: (() => number) | undefined, maxBytes: number) {
    this.#now = now;
    this.#maxBytes = maxBytes;
    this.promise = new Promise<ClientExchange>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  get settled(): boolean {
    return this.#settled;
  }

  /** The whole response body, or undefined when it was empty. */
  body(): Buffer | undefined {
    if (this.#chunks !== undefined) return Buffer.concat(this.#chunks);
    return this.#first;
  }

  /** Fails the exchange with `reason` and aborts the request if it is on the wire. */
  abort(reason: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(reason);
    if (this.#controller !== undefined) {
      if (!this.#controller.aborted) this.#controller.abort(reason);
    } else {
      this.#pendingAbort = reason;
    }
  }

  /** EventListener for an AbortSignal: `signal.addEventListener('abort', exchange)`. */
  handleEvent(): void {
    this.onSignal?.(this);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#pendingAbort !== undefined) controller.abort(this.#pendingAbort);
  }

  onResponseStart(
    _controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
  ): void {
    if (statusCode < 200) return;
    this.statusCode = statusCode;
    this.headers = headers;
    if (this.#now !== undefined) this.headersAt = this.#now();
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#bytes > this.#maxBytes) {
      this.tooLarge = true;
      this.abort(TOO_LARGE);
      return;
    }
    if (this.#first === undefined) {
      this.#first = chunk;
    } else if (this.#chunks === undefined) {
      this.#chunks = [this.#first, chunk];
    } else {
      this.#chunks.push(chunk);
    }
  }

  onResponseEnd(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#resolve(this);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#reject(error);
  }
}
