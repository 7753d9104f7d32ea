import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Server as TlsServer } from 'node:tls';

/** The response a socket is writing now (Node keeps it there while it is in flight). */
type HttpSocket = Socket & { _httpMessage?: ServerResponse | null };

/**
 * Follows one `http.Server` for the shutdown sequence: stops accepting, closes idle keep-alive
 * connections, asks in-flight responses to close their connection (`Connection: close`) so no
 * client reuses a socket that is about to go away, and waits for them.
 *
 * Until the shutdown starts it costs nothing per request: it only keeps the set of open
 * connections (one listener per connection). A socket's in-flight response is the one Node is
 * writing on it (`socket._httpMessage`, which `http-terminator` and `stoppable` rely on as well);
 * from `stopAccepting()` on, every in-flight and every new response is followed individually.
 */
export class ServerTracker {
  readonly server: Server;
  readonly #connectionEvent: 'connection' | 'secureConnection';
  #sockets = new Set<HttpSocket>();
  #inFlight = new Set<ServerResponse>();
  #closing = false;
  #detached = false;
  #idleWaiters: (() => void)[] = [];
  #sweepScheduled = false;
  /** One listener for all responses: `this` is the response that closed. */
  readonly #onResponseClose: (this: ServerResponse) => void;
  readonly #onSocketClose: (this: HttpSocket) => void;

  constructor(server: Server) {
    this.server = server;
    const tracker = this;
    this.#onResponseClose = function onResponseClose(this: ServerResponse) {
      tracker.finished(this);
    };
    this.#onSocketClose = function onSocketClose(this: HttpSocket) {
      tracker.#sockets.delete(this);
    };
    // HTTPS hands the TLS socket (the one responses are written to) over on `secureConnection`.
    this.#connectionEvent = server instanceof TlsServer ? 'secureConnection' : 'connection';
    server.on(this.#connectionEvent, this.#onConnection);
  }

  /** Requests in flight: those with a response not yet finished. */
  get inFlight(): number {
    if (this.#closing || this.#inFlight.size > 0) return this.#inFlight.size;
    let n = 0;
    for (const socket of this.#sockets) if (isActive(socket._httpMessage)) n++;
    return n;
  }

  #onConnection = (socket: HttpSocket): void => {
    this.#sockets.add(socket);
    socket.once('close', this.#onSocketClose);
  };

  // Installed when the shutdown starts. Prepended, so a response started synchronously by the
  // app still gets `Connection: close`.
  #onRequest = (_req: IncomingMessage, res: ServerResponse): void => {
    this.#follow(res);
  };

  #follow(res: ServerResponse): void {
    if (this.#inFlight.has(res)) return;
    this.#inFlight.add(res);
    if (this.#closing && !res.headersSent) res.setHeader('connection', 'close');
    res.on('close', this.#onResponseClose);
  }

  /** Follows the responses sockets are writing now (including the next pipelined one). */
  #adoptActive(): void {
    for (const socket of this.#sockets) {
      const res = socket._httpMessage;
      if (isActive(res)) this.#follow(res);
    }
  }

  /** @internal called when a followed response closes. */
  finished(res: ServerResponse): void {
    if (!this.#inFlight.delete(res)) return;
    // Once Node has detached the response (next tick): close the connection if it went idle,
    // follow a pipelined response that took its place, and wake the waiters if none is left.
    if (this.#sweepScheduled) return;
    this.#sweepScheduled = true;
    setImmediate(() => {
      this.#sweepScheduled = false;
      if (this.#detached) return;
      this.server.closeIdleConnections();
      this.#adoptActive();
      if (this.#inFlight.size === 0) this.#wake();
    });
  }

  #wake(): void {
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /** Stops accepting connections, closes idle keep-alives, marks in-flight responses close. */
  stopAccepting(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      this.server.prependListener('request', this.#onRequest);
      this.#adoptActive();
    }
    const closed = new Promise<void>((resolve) => {
      if (!this.server.listening) resolve();
      else this.server.close(() => resolve());
    });
    this.server.closeIdleConnections();
    return closed;
  }

  /** Resolves when no request is in flight. */
  idle(): Promise<void> {
    this.#adoptActive();
    if (this.#inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /** Drops every remaining connection (the in-flight deadline passed). */
  destroyAll(): void {
    this.server.closeAllConnections();
  }

  /**
   * Closes every connection still open once in-flight requests are done: keep-alives and
   * connections holding a half-sent request. Reading stops at once, so a request whose last
   * bytes arrive now is never parsed; anything already written is flushed first.
   */
  dropRemaining(): void {
    for (const socket of this.#sockets) {
      socket.pause();
      socket.destroySoon();
    }
    this.server.closeIdleConnections();
  }

  detach(): void {
    this.#detached = true;
    this.server.removeListener(this.#connectionEvent, this.#onConnection);
    this.server.removeListener('request', this.#onRequest);
    for (const socket of this.#sockets) socket.removeListener('close', this.#onSocketClose);
    this.#sockets.clear();
    for (const res of this.#inFlight) res.removeListener('close', this.#onResponseClose);
    this.#inFlight.clear();
    this.#wake();
  }
}

function isActive(res: ServerResponse | null | undefined): res is ServerResponse {
  return res != null && !res.writableFinished && !res.destroyed;
}
