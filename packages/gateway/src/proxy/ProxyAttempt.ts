/**
 * One upstream attempt of the HTTP proxy terminal, as an undici dispatch handler (the current
 * API: `onRequestStart` / `onResponseStart` / `onResponseData` / `onResponseEnd` /
 * `onResponseError`, as the typed client's `Exchange` uses): streams the request body to the
 * upstream and the response back with backpressure both ways, forwards 1xx answers (103 Early
 * Hints), strips hop-by-hop headers after the stages' hooks ran, and reports how the attempt
 * ended to its listener (the terminal).
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { Pick } from '@trellis/core';
import type { Dispatcher } from 'undici';
import type { RequestContext } from '../chain/RequestContext.js';
import { InvalidUpstreamResponseError } from '../errors.js';
import { connectionTokens, HOP_BY_HOP } from './hopByHop.js';
import type { UpstreamTarget } from './UpstreamGroup.js';

/** Called when the response started (status known) or the attempt failed before that. */
export interface AttemptListener {
  started(call: ProxyAttempt, status: number, headers: IncomingHttpHeaders): void;
  failed(call: ProxyAttempt, error: Error): void;
  /** The exchange is over (response finished, or destroyed after it started). */
  finished(call: ProxyAttempt, error: Error | undefined): void;
}

export class ProxyAttempt implements Dispatcher.DispatchHandler {
  readonly ctx: RequestContext;
  readonly target: UpstreamTarget;
  readonly pick: Pick;
  readonly startedAt: number;
  readonly span: Span | undefined;
  status = 0;
  #controller: Dispatcher.DispatchController | undefined;
  #pendingAbort: Error | undefined;
  #listener: AttemptListener;
  #settled = false;
  #responding = false;
  #ended = false;
  #onDrain: (() => void) | undefined;

  constructor(
    ctx: RequestContext,
    target: UpstreamTarget,
    pick: Pick,
    startedAt: number,
    listener: AttemptListener,
    span: Span | undefined,
  ) {
    this.ctx = ctx;
    this.target = target;
    this.pick = pick;
    this.startedAt = startedAt;
    this.#listener = listener;
    this.span = span;
  }

  /** True once the upstream request may have been sent (the connection was handed over). */
  get sent(): boolean {
    return this.#controller !== undefined;
  }

  /** Aborts the upstream request (client went away, body too large, gateway closing). */
  abort(err: Error): void {
    if (this.#ended && this.#controller !== undefined) return;
    const c = this.#controller;
    if (c !== undefined) {
      if (!c.aborted) c.abort(err);
    } else this.#pendingAbort = err;
  }

  /**
   * Gives up on an attempt still queued for a connection: the listener hears `failed(err)` now;
   * undici aborts the request as soon as it is dequeued (a queued request cannot be removed).
   */
  abandon(err: Error): void {
    if (this.#settled || this.#controller !== undefined) return;
    this.#pendingAbort = err;
    this.#settled = true;
    this.#ended = true;
    this.#listener.failed(this, err);
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#controller = controller;
    if (this.#pendingAbort !== undefined) controller.abort(this.#pendingAbort);
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: IncomingHttpHeaders,
    statusMessage?: string,
  ): void {
    const ctx = this.ctx;
    const res = ctx.res;
    if (statusCode < 200) {
      // RFC 9110 §15.2: a proxy forwards 1xx answers. Node writes 103 itself; 100 never gets
      // here (undici cannot parse an unsolicited one and fails the attempt).
      if (statusCode === 103 && !res.headersSent && !res.destroyed && headers.link !== undefined) {
        res.writeEarlyHints({ link: headers.link as string | string[] });
      }
      return;
    }
    if (statusCode > 599) {
      controller.abort(
        new InvalidUpstreamResponseError(
          `upstream ${this.target.host} answered status ${statusCode}`,
        ),
      );
      return;
    }
    this.status = statusCode;
    this.#responding = true;
    this.#settled = true;
    this.#listener.started(this, statusCode, headers);
    if (res.destroyed) {
      controller.abort(new Error('client connection closed'));
      return;
    }
    const idHeader = ctx.gateway.requestIdHeader;
    const named = connectionTokens(headers.connection);
    const hooks = ctx.upstreamResponseHooks;
    const extra = ctx.responseHeaderEdits;
    const out: string[] = [];
    if (hooks === undefined && extra === undefined) {
      for (const name in headers) {
        if (HOP_BY_HOP.has(name) || name === idHeader || named?.has(name)) continue;
        const v = headers[name] as string | string[];
        if (typeof v === 'string') out.push(name, v);
        else for (const item of v) out.push(name, item);
      }
    } else {
      const record: Record<string, string | string[]> = {};
      for (const name in headers) record[name] = headers[name] as string | string[];
      if (extra !== undefined)
        for (const key of Object.keys(extra)) record[key.toLowerCase()] = extra[key] as string;
      if (hooks !== undefined) for (const hook of hooks) hook(statusCode, record);
      for (const name of Object.keys(record)) {
        const lower = name.toLowerCase();
        if (HOP_BY_HOP.has(lower) || lower === idHeader || named?.has(lower)) continue;
        const v = record[name] as string | string[];
        if (Array.isArray(v)) for (const item of v) out.push(lower, item);
        else out.push(lower, v);
      }
    }
    out.push(idHeader, ctx.requestId);
    // Shutting down: the response ends with `Connection: close` (no new request on it).
    if (ctx.gateway.closing) res.shouldKeepAlive = false;
    try {
      res.writeHead(statusCode, statusMessage || undefined, out);
    } catch (err) {
      // A hook produced an invalid header (CR/LF): never send it.
      controller.abort(err as Error);
      return;
    }
    // No body can follow (RFC 9110 §6.4.1): the answer is complete now, whatever bytes an
    // upstream sends after it.
    if (statusCode === 204 || statusCode === 304 || ctx.req.method === 'HEAD') {
      this.#bodiless = true;
      res.end();
      return;
    }
    const cl = headers['content-length'];
    this.#remaining = typeof cl === 'string' ? Number(cl) : -1;
  }

  /** No body may follow (HEAD, 204, 304), or the whole body was already written. */
  #bodiless = false;
  /** Body bytes the upstream's `Content-Length` still announces (-1: not known). */
  #remaining = -1;

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#bodiless) return;
    const ctx = this.ctx;
    const res = ctx.res;
    if (res.destroyed) {
      controller.abort(new Error('client connection closed'));
      return;
    }
    ctx.bytesOut += chunk.length;
    if (chunk.length === this.#remaining) {
      // The chunk completes the announced body (a small response arrives in one piece): one
      // `end(chunk)` sends headers and body in one write, without `write`'s cork tick.
      this.#bodiless = true;
      res.end(chunk);
      return;
    }
    if (this.#remaining > 0) this.#remaining -= chunk.length;
    if (res.write(chunk)) return;
    controller.pause();
    // Created on the first backpressure only (most responses never need it).
    this.#onDrain ??= () => this.#controller?.resume();
    res.once('drain', this.#onDrain);
  }

  onResponseEnd(_controller: Dispatcher.DispatchController, trailers: IncomingHttpHeaders): void {
    this.#ended = true;
    const res = this.ctx.res;
    if (this.#bodiless) {
      this.#listener.finished(this, undefined);
      return;
    }
    if (res.chunkedEncoding) {
      let t: Record<string, string> | undefined;
      for (const name in trailers) {
        t ??= {};
        t[name] = String(trailers[name]);
      }
      if (t !== undefined) res.addTrailers(t);
    }
    res.end();
    this.#listener.finished(this, undefined);
  }

  onResponseError(_controller: Dispatcher.DispatchController, err: Error): void {
    this.#ended = true;
    if (this.#bodiless) {
      this.#listener.finished(this, undefined);
      return;
    }
    if (this.#responding) {
      // Mid-body failure: the client must see an aborted response, never a hang.
      this.ctx.res.destroy(err);
      this.#listener.finished(this, err);
      return;
    }
    if (this.#settled) return;
    this.#settled = true;
    this.#listener.failed(this, err);
  }
}
