import { context, trace } from '@opentelemetry/api';
import { getRequestContext } from '../context.js';

/** The fields {@link requestContextMixin} adds; each only when known. */
export interface RequestLogFields {
  requestId?: string;
  traceId?: string;
  spanId?: string;
}

/**
 * Adds `requestId`, `traceId` and `spanId` of the request being served to every log line, so
 * one request can be followed across services by its id. A pino `mixin`:
 * `pino({ mixin: requestContextMixin })`; with any other logger, spread its result into the
 * line. The ids come from the request context the adapters keep (`getRequestContext()`) and
 * from the active OpenTelemetry span; outside a request it returns `{}`.
 *
 * @example
 * ```ts
 * import pino from 'pino';
 * import { requestContextMixin } from '@trellis/core';
 * const logger = pino({ mixin: requestContextMixin });
 * logger.info('order placed'); // {"requestId":"…","traceId":"…","spanId":"…","msg":"order placed",…}
 * ```
 */
export function requestContextMixin(): RequestLogFields {
  const out: RequestLogFields = {};
  const ctx = getRequestContext();
  if (ctx?.requestId !== undefined && ctx.requestId !== '') out.requestId = ctx.requestId;
  const span = trace.getSpan(context.active())?.spanContext();
  if (span !== undefined && trace.isSpanContextValid(span)) {
    out.traceId = span.traceId;
    out.spanId = span.spanId;
  } else if (ctx?.traceId !== undefined && ctx.traceId !== '') {
    out.traceId = ctx.traceId;
  }
  return out;
}
