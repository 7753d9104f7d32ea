import type { IncomingMessage, Server, ServerResponse } from 'node:http';

/**
 * Follows one `http.Server` for the shutdown sequence: counts in-flight requests, stops
 * accepting, closes idle keep-alive connections and asks in-flight responses to close their
 * connection (`Connection: close`) so no client reuses a socket that is about to go away.
 */
export class ServerTracker {
  readonly server: Server;
  #inFlight = new Set<ServerResponse>();
  #closing = false;
  #idleWaiters: (() => void)[] = [];
  /** One listener per tracker (not per request): `this` is the response that closed. */
  readonly #onResponseClose: (this: ServerResponse) => void;

  constructor(server: Server) {
    this.server = server;
    const tracker = this;
    this.#onResponseClose = function onResponseClose(this: ServerResponse) {
      tracker.finished(this);
    };
    // Prepended, so a response started synchronously by the app still gets `Connection: close`.
    server.prependListener('request', this.#onRequest);
  }

  get inFlight(): number {
    return this.#inFlight.size;
  }

  #onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    this.#inFlight.add(res);
    if (this.#closing && !res.headersSent) res.setHeader('connection', 'close');
    res.on('close', this.#onResponseClose);
  };

  /** @internal called when a tracked response closes. */
  finished(res: ServerResponse): void {
    if (!this.#inFlight.delete(res)) return;
    if (!this.#closing) return;
    // A response whose headers went out before shutdown kept its connection alive: close it
    // as soon as Node has marked it idle.
    setImmediate(() => this.server.closeIdleConnections());
    if (this.#inFlight.size === 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /** Stops accepting connections, closes idle keep-alives, marks in-flight responses close. */
  stopAccepting(): Promise<void> {
    this.#closing = true;
    const closed = new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    this.server.closeIdleConnections();
    for (const res of this.#inFlight) {
      if (!res.headersSent) res.setHeader('connection', 'close');
    }
    return closed;
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    if (this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Drops every remaining connection (the in-flight deadline passed). */
  destroyAll(): void {
    this.server.closeAllConnections();
  }

  detach(): void {
    this.server.removeListener('request', this.#onRequest);
    for (const res of this.#inFlight) res.removeListener('close', this.#onResponseClose);
    this.#inFlight.clear();
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }
}
