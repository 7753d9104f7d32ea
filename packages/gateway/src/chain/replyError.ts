/**
 * The one error path: every answer the gateway writes itself (no route, 405, 400, 401, 429, 502,
 * 503, 504, ...) goes through `replyError`, as RFC 9457 `application/problem+json` written by
 * core's `writeProblem`. The status comes from the error's class; the code from the registry
 * (src/errors.ts and core's errors), never a literal. An upgrade request gets the same answer on
 * its raw socket, which is then closed.
 */
import { InternalError, problemOf, type TrellisError, writeProblem } from '@trellis/core';
import type { RequestContext } from './RequestContext.js';

/** Answers `ctx` with `err` (a Trellis error, or anything thrown: then 500 without details). */
export function replyError(
  ctx: RequestContext,
  err: unknown,
  headers?: Record<string, string>,
): void {
  const res = ctx.res;
  const p = problemOf(err, { requestId: ctx.requestId });
  ctx.gateway.countError(ctx.route?.id, p.code, p.status);
  if (res.headersSent || res.writableEnded) {
    // Too late for an answer: the client sees a cut response, never a second one.
    if (!res.writableEnded) res.destroy();
    ctx.finish(p.status);
    return;
  }
  const out: Record<string, string> = {};
  const extra = ctx.responseHeaderEdits;
  if (extra !== undefined) Object.assign(out, extra);
  if (headers !== undefined) Object.assign(out, headers);
  out[ctx.gateway.requestIdHeader] = ctx.requestId;
  // An unread request body would be drained by Node to keep the connection: close it instead.
  // Shutting down, or an upgrade request: the connection is not reused.
  const req = ctx.req;
  if ((!req.complete && hasBodyHeader(req.headers)) || ctx.gateway.closing || ctx.upgrade) {
    out.connection = 'close';
  }
  try {
    writeProblem(res, p, out);
  } catch {
    // A stage set an invalid header value: answer without the extras.
    for (const name of res.getHeaderNames()) res.removeHeader(name);
    writeProblem(res, p, { [ctx.gateway.requestIdHeader]: ctx.requestId });
  }
  if (req.method !== 'HEAD') ctx.bytesOut = Number(res.getHeader('content-length') ?? 0);
  if (ctx.upgrade !== undefined) {
    const socket = ctx.upgrade.socket;
    if (res.writableFinished) socket.end();
    else res.once('finish', () => socket.end());
  }
  ctx.finish(p.status);
}

/** An error for a value thrown by a stage that is not a Trellis error. */
export function internal(err: unknown): TrellisError {
  return new InternalError('internal gateway error', { cause: err });
}

function hasBodyHeader(h: RequestContext['req']['headers']): boolean {
  const cl = h['content-length'];
  return h['transfer-encoding'] !== undefined || (cl !== undefined && cl !== '0');
}
