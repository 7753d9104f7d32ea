/**
 * The access log: one JSON object per request through a pino-compatible logger, written by the
 * proxy core when the request is over (response ended, gateway error answered, or client gone),
 * for every request the gateway answers: proxied, answered by an edge stage (401, 429, CORS
 * preflight), unmatched (404) or rejected by the gateway (400 bad path or framing, 503 while
 * closing). Not logged: `/health` and `/metrics` on the gateway port, and connections Node's
 * HTTP parser rejects before there is a request (431, 408, malformed HTTP).
 *
 * Fields: `requestId`, `method`, `path`, `route`, `upstream`, `status`, `durationMs`,
 * `bytes`, `clientIp`, `subject`, `aborted`.
 */
import type { Logger } from '@trellis/core';
import { z } from 'zod';
import type { GatewayRequestContext } from '../chain/GatewayMiddleware.js';

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
  readonly bytes: number;
  readonly clientIp: string;
  readonly subject: string | undefined;
  readonly aborted: boolean;
}

/** What the access log reads from a request (the proxy core's exchange implements it). */
export interface AccessLogSource {
  readonly req: GatewayRequestContext['req'];
  readonly path: string;
  readonly routeId: string;
  readonly requestId: string;
  readonly clientIp: string;
  readonly identity?: GatewayRequestContext['identity'];
  /** Origin of the upstream URL actually called (last attempt), if any. */
  readonly upstream: string | undefined;
  /** Response body bytes written to the client (proxied body or gateway error body). */
  readonly bytesOut: number;
}

/**
 * Writes one access-log line. `status` is the status recorded for the request (499 when the
 * client went away first), `durationMs` the time from arrival to the end of the response.
 */
export type AccessLogWriter = (
  source: AccessLogSource,
  status: number,
  durationMs: number,
  aborted: boolean,
) => void;

/** Builds the access-log writer for a config (the logger method is bound once). */
export function createAccessLog(config: AccessLogConfig, logger: Logger): AccessLogWriter {
  const write = logger[config.level].bind(logger);
  const msg = config.msg;
  return (src, status, durationMs, aborted) => {
    const line: AccessLogLine = {
      requestId: src.requestId,
      method: src.req.method,
      path: src.path === '' ? (src.req.url ?? '').slice(0, 2048) : src.path,
      route: src.routeId || undefined,
      upstream: src.upstream,
      status,
      durationMs: Math.round(durationMs * 1000) / 1000,
      bytes: src.bytesOut,
      clientIp: src.clientIp,
      subject: src.identity?.subject,
      aborted,
    };
    write(line, msg);
  };
}
