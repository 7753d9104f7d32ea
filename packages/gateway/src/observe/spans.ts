/**
 * OpenTelemetry: one CLIENT span per upstream attempt, and `traceparent` propagation. Without a
 * registered SDK every span would be a non-recording no-op, so `tracingActive` lets the proxy
 * skip the context, propagation and span work entirely (an incoming `traceparent` is then
 * forwarded unchanged).
 */
import {
  type Context,
  context,
  ProxyTracerProvider,
  propagation,
  type Span,
  SpanKind,
  trace,
} from '@opentelemetry/api';
import type { RequestContext } from '../chain/RequestContext.js';

const tracer = trace.getTracer('@trellis/gateway');

/** True when an OpenTelemetry SDK is registered (checked per request: it may come later). */
export function tracingActive(): boolean {
  const provider = trace.getTracerProvider();
  return (
    !(provider instanceof ProxyTracerProvider) ||
    provider.getDelegateTracer('@trellis/gateway') !== undefined
  );
}

/** The incoming trace context of a request. */
export function parentOf(ctx: RequestContext): Context {
  return propagation.extract(context.active(), ctx.req.headers);
}

/** Starts the span of one attempt and injects its context into `headers`; undefined if not recording. */
export function startAttemptSpan(
  ctx: RequestContext,
  parent: Context,
  host: string,
  attempt: number,
  headers: Record<string, string | string[] | undefined>,
): Span | undefined {
  const method = ctx.req.method ?? 'GET';
  const span = tracer.startSpan(
    `${method} ${ctx.routeId}`,
    {
      kind: SpanKind.CLIENT,
      attributes: {
        'http.request.method': method,
        'server.address': host,
        'http.route': ctx.routeId,
        'http.request.resend_count': attempt - 1,
      },
    },
    parent,
  );
  if (!span.isRecording()) return undefined;
  propagation.inject(trace.setSpan(parent, span), headers);
  return span;
}
