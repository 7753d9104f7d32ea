/**
 * The access log: one JSON object per request through a pino-compatible logger, written when
 * the response is finished or the connection closed (so `durationMs` covers the streamed
 * body). Runs in `edge.outer`, around routing.
 *
 * Fields: `requestId`, `method`, `path`, `route`, `upstream`, `status`, `durationMs`,
 * `bytes`, `clientIp`, `subject`, `aborted`.
 *
 * Agreement with the proxy core (read from `ctx.state`, set by the proxy stage):
 * - `ctx.state.upstream`: the upstream URL origin actually called (last attempt), a string.
 * - `ctx.state.bytesOut`: response body bytes written to the client, a number; when absent,
 *   the response's `Content-Length` is logged instead.
 */
import type { Clock, Logger } from '@trellis/core';
import { z } from 'zod';
import type { GatewayMiddleware, GatewayRequestContext } from '../GatewayMiddleware.js';

export const accessLogSchema = z
  .object({
    enabled: z.boolean().default(true).describe('Write one access-log line per request.'),
    level: z
      .enum(['debug', 'info', 'warn'])
      .default('info')
      .describe('Logger level of access-log lines.'),
    msg: z.string().default('request').describe('The `msg` of access-log lines.'),
  })
  .strict()
  .prefault({})
  .describe('The JSON-lines access log (through the gateway logger).');

export type AccessLogConfig = z.output<typeof accessLogSchema>;

export interface AccessLogLine {
  readonly requestId: string;
  readonly method: string | undefined;
  readonly path: string;
  readonly route: string | undefined;
  readonly upstream: string | undefined;
  readonly status: number;
  readonly durationMs: number;
  readonly bytes: number | undefined;
  readonly clientIp: string;
  readonly subject: string | undefined;
  readonly aborted: boolean;
}

function bytesOf(ctx: GatewayRequestContext): number | undefined {
  const counted = ctx.state.bytesOut;
  if (typeof counted === 'number') return counted;
  const length = ctx.res.getHeader('content-length');
  if (length === undefined) return undefined;
  const n = Number(length);
  return Number.isFinite(n) ? n : undefined;
}

export function accessLogMiddleware(
  config: AccessLogConfig,
  logger: Logger,
  clock: Clock,
): GatewayMiddleware {
  const write = logger[config.level].bind(logger);
  const msg = config.msg;
  return async (ctx, next) => {
    const res = ctx.res;
    res.once('close', () => {
      const line: AccessLogLine = {
        requestId: ctx.requestId,
        method: ctx.req.method,
        path: ctx.path,
        route: ctx.routeId || undefined,
        upstream: typeof ctx.state.upstream === 'string' ? ctx.state.upstream : undefined,
        status: res.statusCode,
        durationMs: Math.round((clock.now() - ctx.startedAt) * 1000) / 1000,
        bytes: bytesOf(ctx),
        clientIp: ctx.clientIp,
        subject: ctx.identity?.subject,
        aborted: !res.writableFinished,
      };
      write(line, msg);
    });
    return next();
  };
}
