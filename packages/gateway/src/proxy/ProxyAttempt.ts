/**
 * One upstream attempt, as an undici dispatch handler: streams the request body to the
 * upstream and the response back to the client with backpressure both ways, strips hop-by-hop
 * headers after hooks, aborts the upstream call when the client goes away, and maps failures to
 * 502 / 504 while the response has not started.
 */

import type { Span } from '@opentelemetry/api';
import type { Pick } from '@trellis/core';
import type { Dispatcher } from 'undici';
import type { Exchange } from '../chain/RequestContext.js';
import { connectionTokens, HOP_BY_HOP } from './hopByHop.js';
import type { UpstreamTarget } from './UpstreamGroup.js';

/** How an attempt ended before the response started. */
export type AttemptFailure =
  | { readonly kind: 'connect'; readonly neverSent: boolean; readonly error: Error }
  | { readonly kind: 'timeout'; readonly error: Error }
  | { readonly kind: 'client-gone'; readonly error: Error }
  | { readonly kind: 'body-too-large'; readonly error: Error };

/** Called when the response started (status known) or the attempt failed before that. */
export interface AttemptListener {
  started(call: ProxyCall, status: number): void;
  failed(call: ProxyCall, failure: AttemptFailure): void;
  /** The exchange is over (response finished, or destroyed after it started). */
  finished(call: ProxyCall, error: Error | undefined): void;
}

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'ETIMEDOUT',
]);
/** Errors that prove the request never left the gateway. */
const NEVER_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);

export class ProxyCall implements Dispatcher.DispatchHandler {
  readonly ex: Exchange;
  readonly target: UpstreamTarget;
  readonly pick: Pick;
  readonly startedAt: number;
  readonly span: Span | undefined;
  status = 0;
  #abort: ((err?: Error) => void) | undefined;
  #resume: (() => void) | undefined;
  #listener: AttemptListener;
  #settled = false;
  #responding = false;
  #ended = false;

  constructor(
    ex: Exchange,
    target: UpstreamTarget,
    pick: Pick,
    startedAt: number,
    listener: AttemptListener,
    span: Span | undefined,
  ) {
    this.ex = ex;
    this.target = target;
    this.pick = pick;
    this.startedAt = startedAt;
    this.#listener = listener;
    this.span = span;
  }

  /** Aborts the upstream request (client went away, body too large, gateway closing). */
  abort(err: Error): void {
    if (this.#ended) return;
    if (this.#abort !== undefined) this.#abort(err);
    else this.#pendingAbort = err;
  }
  #pendingAbort: Error | undefined;

  onConnect(abort: (err?: Error) => void): void {
    if (this.#pendingAbort !== undefined) {
      abort(this.#pendingAbort);
      return;
    }
    this.#abort = abort;
  }

  onHeaders(
    statusCode: number,
    rawHeaders: Buffer[],
    resume: () => void,
    statusText: string,
  ): boolean {
    if (statusCode < 200) return true; // 1xx informational: not relayed (undici consumes 100)
    this.status = statusCode;
    this.#resume = resume;
    this.#responding = true;
    this.#settled = true;
    const ex = this.ex;
    const res = ex.res;
    this.#listener.started(this, statusCode);
    if (res.destroyed) {
      this.#abort?.(new Error('client connection closed'));
      return false;
    }
    // Response headers: strip hop-by-hop and Connection-named ones after the hooks ran.
    let named: Set<string> | undefined;
    const flat: string[] = [];
    const hooks = ex.upstreamResponseHooks;
    let out: string[];
    if (hooks === undefined && !ex.hasResponseHeaders) {
      // Fast path: one pass, hop-by-hop dropped on the way; Connection-named ones after.
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const lower = (rawHeaders[i] as Buffer).toString('latin1').toLowerCase();
        const value = (rawHeaders[i + 1] as Buffer).toString('latin1');
        if (HOP_BY_HOP.has(lower)) {
          if (lower === 'connection') named = connectionTokens(value);
          continue;
        }
        flat.push(lower, value);
      }
      if (named === undefined) out = flat;
      else {
        out = [];
        for (let i = 0; i < flat.length; i += 2) {
          if (!named.has(flat[i] as string)) out.push(flat[i] as string, flat[i + 1] as string);
        }
      }
      out.push(ex.gateway.requestIdHeader, ex.requestId);
    } else {
      for (let i = 0; i < rawHeaders.length; i += 2) {
        const lower = (rawHeaders[i] as Buffer).toString('latin1').toLowerCase();
        const value = (rawHeaders[i + 1] as Buffer).toString('latin1');
        if (lower === 'connection') named = connectionTokens(value);
        flat.push(lower, value);
      }
      const extra = ex.responseHeaders;
      const record: Record<string, string | string[]> = {};
      for (let i = 0; i < flat.length; i += 2) {
        const name = flat[i] as string;
        const prev = record[name];
        const value = flat[i + 1] as string;
        if (prev === undefined) record[name] = value;
        else if (Array.isArray(prev)) prev.push(value);
        else record[name] = [prev, value];
      }
      for (const key of Object.keys(extra)) record[key.toLowerCase()] = extra[key] as string;
      record[ex.gateway.requestIdHeader] = ex.requestId;
      if (hooks !== undefined) for (const hook of hooks) hook(statusCode, record);
      out = [];
      for (const name of Object.keys(record)) {
        const lower = name.toLowerCase();
        if (HOP_BY_HOP.has(lower) || named?.has(lower)) continue;
        const v = record[name] as string | string[];
        if (Array.isArray(v)) for (const item of v) out.push(lower, item);
        else out.push(lower, v);
      }
    }
    // Shutting down: the response ends with `Connection: close` (no new request on it).
    if (ex.gateway.closing) res.shouldKeepAlive = false;
    try {
      res.writeHead(statusCode, statusText || undefined, out);
    } catch (err) {
      // A hook produced an invalid header (CR/LF): never send it.
      this.#abort?.(err as Error);
      return false;
    }
    return true;
  }

  onData(chunk: Buffer): boolean {
    const ex = this.ex;
    const res = ex.res;
    if (res.destroyed) {
      this.#abort?.(new Error('client connection closed'));
      return false;
    }
    ex.bytesOut += chunk.length;
    if (res.write(chunk)) return true;
    // Created on the first backpressure only (most responses never need it).
    this.#onDrain ??= () => this.#resume?.();
    res.once('drain', this.#onDrain);
    return false;
  }

  #onDrain: (() => void) | undefined;

  onComplete(trailers: string[] | null): void {
    this.#ended = true;
    const res = this.ex.res;
    if (trailers !== null && trailers.length > 0 && res.chunkedEncoding) {
      const t: Record<string, string> = {};
      for (let i = 0; i < trailers.length; i += 2) {
        t[String(trailers[i]).toLowerCase()] = String(trailers[i + 1]);
      }
      res.addTrailers(t);
    }
    res.end();
    this.#listener.finished(this, undefined);
  }

  onError(err: Error): void {
    this.#ended = true;
    if (this.#responding) {
      // Mid-body failure: the client must see an aborted response, never a hang.
      this.ex.res.destroy(err);
      this.#listener.finished(this, err);
      return;
    }
    if (this.#settled) return;
    this.#settled = true;
    this.#listener.failed(this, classify(err, this.ex));
  }

  onBodySent(): void {}
}

function classify(err: Error, ex: Exchange): AttemptFailure {
  if (ex.bodyTooLarge !== undefined) return { kind: 'body-too-large', error: ex.bodyTooLarge };
  if (ex.clientGone) return { kind: 'client-gone', error: err };
  const code = (err as { code?: string }).code ?? '';
  if (TIMEOUT_CODES.has(code)) return { kind: 'timeout', error: err };
  const cause = (err as { cause?: { code?: string } }).cause?.code ?? '';
  return {
    kind: 'connect',
    neverSent: NEVER_SENT_CODES.has(code) || NEVER_SENT_CODES.has(cause),
    error: err,
  };
}
