import type { ServerResponse } from 'node:http';

/** Aborts `controller` when `res` closes before it finished, i.e. the client went away. */
function abortOnClose(res: ServerResponse, controller: AbortController): void {
  if (res.closed) {
    if (!res.writableFinished) controller.abort(new Error('the client went away'));
    return;
  }
  res.once('close', () => {
    if (!res.writableFinished) controller.abort(new Error('the client went away'));
  });
}

/**
 * What a handler receives, made once per request without a closure: the parsed parts, the
 * framework's request and a `signal` made only when the handler reads it (most never do),
 * aborted when the response closes before it finished, i.e. the client went away.
 */
export class HandlerArgs {
  readonly params: unknown;
  readonly query: unknown;
  readonly body: unknown;
  readonly headers: unknown;
  readonly request: unknown;
  #res: ServerResponse;
  #controller: AbortController | undefined;

  constructor(
    params: unknown,
    query: unknown,
    body: unknown,
    headers: unknown,
    request: unknown,
    res: ServerResponse,
  ) {
    this.params = params;
    this.query = query;
    this.body = body;
    this.headers = headers;
    this.request = request;
    this.#res = res;
  }

  get signal(): AbortSignal {
    let c = this.#controller;
    if (c === undefined) {
      c = new AbortController();
      this.#controller = c;
      abortOnClose(this.#res, c);
    }
    return c.signal;
  }
}
