import { StringDecoder } from 'node:string_decoder';
import { type Context, context as otelContext } from '@opentelemetry/api';
import type { Dispatcher } from 'undici';
import type { z } from 'zod';
import type { Clock } from '../Clock.js';
import { DEADLINE_HEADER, getRequestContext } from '../context.js';
import type { EndpointDefinition } from '../contract/endpoint.js';
import type { StreamResponse } from '../contract/stream.js';
import {
  AbortedError,
  type ConfigIssue,
  ConnectError,
  HttpError,
  RequestValidationError,
  ResponseValidationError,
  ShutdownError,
  TimeoutError,
} from '../errors.js';
import { type Logger, silentLogger } from '../Logger.js';
import { toIssues } from '../options.js';
import type { Policy } from '../Policy.js';
import { parseProblem } from '../problem/Problem.js';
import { isTrellisError } from '../TrellisError.js';
import { clampDelay, MAX_DELAY_MS } from '../time/duration.js';
import { sleep } from '../time/sleep.js';
import { abortError, toTransportError } from './clientErrors.js';
import { PathTemplate } from './PathTemplate.js';
import { serializeQuery } from './query.js';
import { NdjsonParser, SseParser } from './readStream.js';
import { parseRetryAfter } from './retryAfter.js';
import { ServiceTarget } from './ServiceTarget.js';
import { StreamAttempt, type StreamTelemetry } from './StreamAttempt.js';
import type { Target } from './Upstream.js';

/** What the stream side of a client needs from the client's (parsed) options. */
export interface ClientStreamSettings {
  readonly headers?: Readonly<Record<string, string>> | undefined;
  readonly timeoutMs: number;
  readonly validateResponse: boolean | { readonly sampleRate: number };
  readonly logger?: Logger | undefined;
}

/**
 * What the streams share with the rest of the client (ClientCore): the upstream pools and the
 * discovery watch (one `Target`), the policy (throttle included), the tracer, the metrics and
 * the clock.
 */
export interface ClientStreamShared extends StreamTelemetry {
  readonly target: Target;
  readonly policy: Policy | undefined;
}

type StreamInput = {
  readonly params?: Readonly<Record<string, unknown>>;
  readonly query?: unknown;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, unknown>>;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
  readonly idleTimeoutMs?: number;
  readonly lastEventId?: string;
};

const DEFAULT_IDLE_MS = 60_000;
const DEFAULT_SSE_RETRY_MS = 1_000;
const MAX_LINE_BYTES = 1024 * 1024;
/** Largest single item (SSE event or NDJSON line) the client buffers. */
const MAX_ITEM_CHARS = 16 * 1024 * 1024;

/**
 * The streamed endpoints of a client (`sse(...)`/`ndjson(...)` responses): each method returns
 * an `AsyncIterable` of validated items. Opening a stream (and every SSE reconnection, with
 * `Last-Event-ID`) goes through the client's policy; once open, the whole-call `timeoutMs` stops
 * and `idleTimeoutMs` (default 60 s) watches the gaps between chunks. Breaking out of the loop or
 * aborting the signal closes the connection. Streams use the client's own pools and discovery
 * watch, and record the client's span and metric per open (StreamAttempt). Closing the client
 * cuts the streams still open (their loops throw `ShutdownError`).
 */
export class ClientStreams {
  readonly #settings: ClientStreamSettings;
  readonly #shared: ClientStreamShared;
  readonly #clock: Clock;
  readonly #logger: Logger;
  /** Bodies of the streams currently open, cut on close(). */
  readonly #live = new Set<Dispatcher.ResponseData['body']>();
  readonly #headers: Record<string, string>;
  readonly #validateAll: boolean;
  readonly #sampleRate: number;
  #credit = 0;
  #closed = false;

  constructor(settings: ClientStreamSettings, shared: ClientStreamShared) {
    this.#settings = settings;
    this.#shared = shared;
    this.#clock = shared.clock;
    this.#logger = settings.logger ?? silentLogger;
    this.#headers = {};
    for (const [k, v] of Object.entries(settings.headers ?? {})) this.#headers[k.toLowerCase()] = v;
    const v = settings.validateResponse;
    this.#validateAll = v === true || (typeof v === 'object' && v.sampleRate >= 1);
    this.#sampleRate = typeof v === 'object' ? v.sampleRate : v ? 1 : 0;
  }

  /** The client method for one streamed endpoint. */
  method(name: string, def: EndpointDefinition): (input?: StreamInput) => AsyncIterable<unknown> {
    const template = new PathTemplate(def.path, name);
    const stream = def.response as StreamResponse;
    return (input: StreamInput = {}) => ({
      // The trace context of whoever starts the loop parents the stream's spans.
      [Symbol.asyncIterator]: () =>
        this.#iterate(name, def, template, stream, input, otelContext.active())[
          Symbol.asyncIterator
        ](),
    });
  }

  /**
   * Refuses new streams and cuts the open ones, so the client's pools can close (a pool waits
   * for its requests, and an event stream may never end by itself). The pools and the discovery
   * watch are the client's: ClientCore closes them, once.
   */
  close(): void {
    this.#closed = true;
    for (const body of this.#live) discard(body);
    this.#live.clear();
  }

  #shouldValidate(): boolean {
    if (this.#validateAll) return true;
    if (this.#sampleRate === 0) return false;
    this.#credit += this.#sampleRate;
    if (this.#credit < 1) return false;
    this.#credit -= 1;
    return true;
  }

  async *#iterate(
    name: string,
    def: EndpointDefinition,
    template: PathTemplate,
    stream: StreamResponse,
    input: StreamInput,
    active: Context,
  ): AsyncGenerator<unknown> {
    if (this.#closed) throw new ShutdownError('createClient: the client is closed');
    checkStreamOptions(name, input);
    const request = this.#prepare(name, def, template, stream, input);
    const signal = input.signal;
    const idleMs = input.idleTimeoutMs ?? DEFAULT_IDLE_MS;
    const sse = stream.stream === 'sse';
    let lastEventId = input.lastEventId;
    let retryMs = DEFAULT_SSE_RETRY_MS;
    for (;;) {
      if (signal?.aborted) throw aborted(signal);
      const headers = { ...request.headers };
      if (sse && lastEventId !== undefined) headers['last-event-id'] = lastEventId;
      const opened = await this.#open(name, def, template, request, headers, input, active);
      if (opened === undefined) return; // SSE 204: the server says stop.
      const { res, attempt } = opened;
      const items: unknown[] = [];
      let failure: Error | undefined;
      const parser = sse
        ? new SseParser((e) => {
            if (failure !== undefined) return;
            const v = this.#item(name, stream.schema, e.data);
            if (v instanceof Error) failure = v;
            else
              items.push({
                data: v,
                ...(e.id !== undefined && { id: e.id }),
                ...(e.event !== undefined && { event: e.event }),
              });
          }, lastEventId)
        : new NdjsonParser((line) => {
            if (failure !== undefined) return;
            const v = this.#item(name, stream.schema, line);
            if (v instanceof Error) failure = v;
            else items.push(v);
          });
      const decoder = new StringDecoder('utf8');
      const body = res.body;
      let idleError: TimeoutError | undefined;
      const clock = this.#clock;
      let timer = clock.setTimeout(onIdle, idleMs);
      function onIdle() {
        idleError = new TimeoutError(`${name}: no data for ${idleMs} ms`, { timeoutMs: idleMs });
        discard(body);
      }
      const onAbort = () => discard(body);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#live.add(body);
      // close() ran between the open and here: cut this one too.
      if (this.#closed) discard(body);
      let ended = false;
      let transportError: unknown;
      // How the stream ended, for its span and metric; stays undefined when the server ended it
      // or the caller broke out of its loop (neither is anybody's fault).
      let outcome: unknown;
      try {
        try {
          for await (const chunk of body) {
            clock.clearTimeout(timer);
            timer = clock.setTimeout(onIdle, idleMs);
            parser.push(decoder.write(chunk as Buffer));
            if (parser.buffered > MAX_ITEM_CHARS) {
              const message = `an item is longer than ${MAX_ITEM_CHARS} characters`;
              failure = new ResponseValidationError(`${name}: invalid stream item: ${message}`, {
                status: 200,
                issues: [{ path: 'item', message }],
                body: undefined,
              });
            }
            if (parser instanceof SseParser) lastEventId = parser.lastEventId;
            if (items.length > 0) {
              for (const item of items.splice(0)) yield item;
            }
            if (failure !== undefined) throw failure;
          }
          parser.push(decoder.end());
          if (parser instanceof NdjsonParser) parser.end();
          for (const item of items.splice(0)) yield item;
          if (failure !== undefined) throw failure;
          ended = true;
          if (idleError !== undefined) throw idleError;
          if (this.#closed) throw new ShutdownError('createClient: the client is closed');
          if (signal?.aborted) throw aborted(signal);
        } catch (err) {
          const own = err === failure || (isTrellisError(err) && !(err instanceof ConnectError));
          outcome =
            idleError ??
            (signal?.aborted ? aborted(signal) : undefined) ??
            (this.#closed ? new ShutdownError('createClient: the client is closed') : undefined) ??
            (own ? err : undefined);
          if (outcome !== undefined) throw outcome;
          transportError = err;
          outcome = new ConnectError(
            `${name}: the stream broke off: ${String((err as Error)?.message ?? err)}`,
            { target: this.#shared.target.name, cause: err },
          );
        }
      } finally {
        clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#live.delete(body);
        if (!body.destroyed) discard(body);
        attempt.end(outcome);
      }
      if (!sse) {
        if (ended) return;
        throw (
          outcome ??
          new ConnectError(`${name}: the stream broke off`, {
            target: this.#shared.target.name,
            cause: transportError,
          })
        );
      }
      // SSE: reconnect after the server's `retry`, resuming from the last event id.
      if (parser instanceof SseParser && parser.retryMs !== undefined) retryMs = parser.retryMs;
      this.#logger.debug(
        { endpoint: name, lastEventId, retryMs },
        `${name}: the event stream ${ended ? 'ended' : 'broke off'}; reconnecting`,
      );
      await sleep(retryMs, { clock: this.#clock, ...(signal !== undefined && { signal }) });
    }
  }

  /** Parses and (when sampled) validates one item; returns the error instead of throwing. */
  #item(name: string, schema: z.ZodType, text: string): unknown {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      const message = `item is not valid JSON: ${(err as Error).message}`;
      return new ResponseValidationError(`${name}: invalid stream item: ${message}`, {
        status: 200,
        issues: [{ path: 'item', message }],
        body: text.slice(0, 200),
      });
    }
    if (!this.#shouldValidate()) return value;
    const r = schema.safeParse(value);
    if (r.success) return r.data;
    const issues = toIssues(r.error).map((i) => ({
      path: i.path === '(root)' ? 'item' : `item.${i.path}`,
      message: i.message,
    }));
    return new ResponseValidationError(
      `${name}: invalid stream item: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { status: 200, issues, body: value, cause: r.error },
    );
  }

  #prepare(
    name: string,
    def: EndpointDefinition,
    template: PathTemplate,
    stream: StreamResponse,
    input: StreamInput,
  ) {
    const issues: ConfigIssue[] = [];
    const parse = (part: string, schema: z.ZodType | undefined, value: unknown) => {
      if (schema === undefined) return value;
      const r = schema.safeParse(value);
      if (r.success) return r.data;
      for (const i of toIssues(r.error))
        issues.push({ path: i.path === '(root)' ? part : `${part}.${i.path}`, message: i.message });
      return value;
    };
    const params = parse('params', def.params, input.params) as Record<string, unknown> | undefined;
    const query = parse('query', def.query, input.query);
    const body = parse('body', def.body, input.body);
    const hdrs = parse('headers', def.headers, input.headers ?? {}) as Record<string, unknown>;
    if (issues.length > 0) {
      throw new RequestValidationError(
        `${name}: invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
        { issues },
      );
    }
    const headers: Record<string, string> = { ...this.#headers, accept: stream.contentType };
    for (const src of [input.headers, hdrs]) {
      if (src === undefined) continue;
      for (const [k, v] of Object.entries(src))
        if (v !== undefined && v !== null) headers[k.toLowerCase()] = String(v);
    }
    let text: string | undefined;
    if (body !== undefined) {
      text = JSON.stringify(body);
      headers['content-type'] ??= 'application/json';
    }
    const requestId = getRequestContext()?.requestId;
    if (requestId !== undefined && headers['x-request-id'] === undefined)
      headers['x-request-id'] = requestId;
    return { path: template.build(params) + serializeQuery(query), body: text, headers };
  }

  /**
   * Opens the stream (through the policy): resolves with a 2xx response and its attempt (whose
   * span and metric end with the stream), or undefined for SSE 204.
   */
  #open(
    name: string,
    def: EndpointDefinition,
    template: PathTemplate,
    request: { readonly path: string; readonly body: string | undefined },
    headers: Record<string, string>,
    input: StreamInput,
    active: Context,
  ): Promise<{ res: Dispatcher.ResponseData; attempt: StreamAttempt } | undefined> {
    const clock = this.#clock;
    const budget = clampDelay(input.timeoutMs ?? this.#settings.timeoutMs);
    // The caller's inherited deadline (runWithDeadline, a trusted x-trellis-deadline-ms) bounds
    // the open too: running out of it is the caller's fault, not the upstream's.
    let deadlineAt: number | undefined;
    const ctx = getRequestContext();
    if (ctx?.deadline !== undefined) {
      const left = ctx.deadline - (ctx.clock ?? clock).now();
      if (left < budget) deadlineAt = clock.now() + left;
    }
    const shared = this.#shared;
    const target = shared.target;
    const path = request.path;
    const callerSignal = input.signal;
    const tried = target instanceof ServiceTarget ? new Set<string>() : undefined;
    const req = {
      method: def.method,
      spanName: `${def.method} ${template.otelTemplate}`,
      urlTemplate: template.otelTemplate,
      path,
    };
    const run = async (attemptSignal: AbortSignal | undefined, n: number) => {
      if (this.#closed) throw new ShutdownError('createClient: the client is closed');
      if (attemptSignal?.aborted) throw abortError(attemptSignal, callerSignal);
      const leased = target.acquire(tried);
      const lease = leased instanceof Promise ? await leased : leased;
      tried?.add(lease.upstream.id);
      if (attemptSignal?.aborted || this.#closed) {
        // Nothing was sent: the instance is not at fault.
        lease.pick?.done({ ok: true, durationMs: 0 });
        if (attemptSignal?.aborted) throw abortError(attemptSignal, callerSignal);
        throw new ShutdownError('createClient: the client is closed');
      }
      const upstream = lease.upstream;
      const ms = deadlineAt === undefined ? budget : Math.max(0, deadlineAt - clock.now());
      const sent = { ...headers, [DEADLINE_HEADER]: String(Math.floor(ms)) };
      const attempt = new StreamAttempt(shared, lease, { ...req, attempt: n }, active, sent);
      const controller = new AbortController();
      const timer = clock.setTimeout(
        () =>
          controller.abort(
            deadlineAt === undefined
              ? new TimeoutError(`${name}: the stream did not open within ${budget} ms`, {
                  timeoutMs: budget,
                })
              : new TimeoutError(
                  `${name}: the stream did not open before the caller's deadline (${Math.round(ms)} ms were left)`,
                  { timeoutMs: Math.round(ms), deadline: true, retryable: false },
                ),
          ),
        ms,
      );
      const onAbort = () =>
        controller.abort(abortError(attemptSignal as AbortSignal, callerSignal));
      attemptSignal?.addEventListener('abort', onAbort, { once: true });
      let res: Dispatcher.ResponseData | undefined;
      try {
        res = await upstream.pool.request({
          origin: upstream.origin,
          path: upstream.prefix + path,
          method: def.method,
          headers: sent,
          body: request.body,
          signal: controller.signal,
          // The idle timeout watches the body; undici's own would cut long quiet streams.
          bodyTimeout: 0,
        });
        attempt.answered(res.statusCode, res.headers);
        if (res.statusCode === 204 && def.method !== 'HEAD') {
          discard(res.body);
          attempt.end(undefined, res.headers);
          return undefined;
        }
        if (res.statusCode < 200 || res.statusCode > 299) {
          const text = await readLimited(res.body);
          let parsed: unknown = text;
          try {
            parsed = JSON.parse(text);
          } catch {
            // not JSON: keep the text
          }
          const type = res.headers['content-type'];
          const problem = parseProblem(typeof type === 'string' ? type : undefined, parsed);
          throw new HttpError(`${name}: upstream answered ${res.statusCode}`, {
            status: res.statusCode,
            headers: res.headers,
            body: parsed,
            retryAfterMs: parseRetryAfter(res.headers['retry-after']),
            retryable: res.statusCode === 502 || res.statusCode === 503 || res.statusCode === 504,
            ...(problem !== undefined && { problem }),
          });
        }
        if (this.#closed) {
          discard(res.body);
          throw new ShutdownError('createClient: the client is closed');
        }
        return { res, attempt };
      } catch (err) {
        let error: Error;
        const reason = controller.signal.reason;
        if (isTrellisError(err)) error = err;
        else if (controller.signal.aborted && isTrellisError(reason)) error = reason;
        // undici's own errors, mapped like a call's: a header undici refuses is the caller's
        // request (RequestValidationError), a reset or refusal the upstream's (ConnectError).
        else error = toTransportError(err, target.name, upstream.origin, name);
        attempt.end(error, res?.headers);
        throw error;
      } finally {
        this.#clock.clearTimeout(timer);
        attemptSignal?.removeEventListener('abort', onAbort);
      }
    };
    const policy = shared.policy;
    if (policy === undefined) return run(callerSignal, 1);
    return policy.execute(
      (ctx) => run(ctx.signal, ctx.attempt),
      callerSignal !== undefined ? { signal: callerSignal } : {},
    );
  }
}

function aborted(signal: AbortSignal): AbortedError {
  return new AbortedError('createClient: the stream was aborted', { cause: signal.reason });
}

async function readLimited(body: Dispatcher.ResponseData['body']): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += (chunk as Buffer).length;
    if (size > MAX_LINE_BYTES) {
      discard(body);
      break;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Closes a response body we no longer read (undici reports that as an error: ignore it). */
function discard(body: Dispatcher.ResponseData['body']): void {
  body.on('error', () => {});
  body.destroy();
}

/** Per-call stream options: a bad one is the caller's mistake, named before any I/O. */
function checkStreamOptions(name: string, input: StreamInput): void {
  const issues: ConfigIssue[] = [];
  const ms = input.idleTimeoutMs;
  if (ms !== undefined && !(typeof ms === 'number' && ms > 0 && ms <= MAX_DELAY_MS)) {
    issues.push({
      path: 'idleTimeoutMs',
      message: `expected a number of milliseconds in (0, ${MAX_DELAY_MS}]`,
    });
  }
  const id = input.lastEventId;
  if (id !== undefined && (typeof id !== 'string' || /[\r\n\0]/.test(id))) {
    issues.push({ path: 'lastEventId', message: 'must be a string without CR, LF or NUL' });
  }
  if (issues.length > 0) {
    throw new RequestValidationError(
      `${name}: invalid request: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      { issues },
    );
  }
}
