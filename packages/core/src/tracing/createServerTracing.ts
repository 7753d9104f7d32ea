import type { IncomingHttpHeaders } from 'node:http';
import {
  type Context,
  context,
  isSpanContextValid,
  ProxyTracerProvider,
  propagation,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type TextMapGetter,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import { z } from 'zod';
import { describeThrown } from '../faults/describeThrown.js';
import { parseOptions } from '../options.js';

/** The instrumentation scope name Trellis spans are created under. */
export const TRACER_NAME = '@trellis/core';

const headerGetter: TextMapGetter<IncomingHttpHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => carrier[key],
};

const optionsSchema = z
  .object({
    tracerProvider: z
      .custom<TracerProvider>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as { getTracer?: unknown }).getTracer === 'function',
        'must be an OpenTelemetry TracerProvider',
      )
      .optional(),
  })
  .strict();

export interface ServerTracingOptions {
  /** Where tracers come from. Default: the global provider (`trace.getTracerProvider()`). */
  tracerProvider?: TracerProvider;
}

/** What a server span is started from: the request's method, target and headers. */
export interface ServerSpanRequest {
  readonly method?: string;
  readonly url?: string;
  readonly headers: IncomingHttpHeaders;
  readonly httpVersion?: string;
  readonly socket?: { readonly remoteAddress?: string; readonly encrypted?: boolean } | null;
}

/** A started server span and the context to run the handler in. */
export interface StartedServerSpan {
  readonly span: Span;
  /** The context holding the span; the handler should run in it so child spans nest. */
  readonly context: Context;
  /** True when the span carries a valid trace id (an SDK is installed, or a parent was given). */
  readonly valid: boolean;
}

/** Creates SERVER spans per the OpenTelemetry HTTP semantic conventions. */
export interface ServerTracing {
  /**
   * Starts the span for a request; `method` is the normalised method (`GET`, `_OTHER`).
   * Returns undefined, doing no work at all, while no OpenTelemetry SDK is registered (and no
   * `tracerProvider` was given).
   */
  start(req: ServerSpanRequest, method: string): StartedServerSpan | undefined;
  /**
   * Names the span `{method} {route}` (just `{method}` when no route matched), records the
   * status and ends it. 5xx responses and errors set the span status to Error.
   */
  end(
    started: StartedServerSpan,
    method: string,
    route: string | undefined,
    status: number,
    error?: unknown,
  ): void;
}

// The provider a ProxyTracerProvider delegates to while no SDK is registered.
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

function pathOf(url: string | undefined): string {
  if (url === undefined) return '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/**
 * Creates server tracing on `@opentelemetry/api` only. Without an SDK every span is a no-op
 * and costs a few property reads.
 *
 * @example
 * ```ts
 * import { createServerTracing } from '@trellis/core/tracing';
 *
 * const tracing = createServerTracing();
 * const started = tracing.start(req, 'GET');
 * // ... serve the request inside context.with(started.context, ...) ...
 * tracing.end(started, 'GET', '/items/:id', 200);
 * ```
 */
export function createServerTracing(options: ServerTracingOptions = {}): ServerTracing {
  const opts = parseOptions(optionsSchema, options, 'createServerTracing');
  const provider = opts.tracerProvider;
  // The global tracer is a proxy that picks up an SDK registered later.
  const tracer: Tracer = provider ? provider.getTracer(TRACER_NAME) : trace.getTracer(TRACER_NAME);
  const global = provider === undefined ? trace.getTracerProvider() : undefined;
  const globalProxy = global instanceof ProxyTracerProvider ? global : undefined;

  return {
    start(req, method) {
      // No SDK registered: skip the no-op span, the propagation and the context switch.
      if (globalProxy !== undefined && globalProxy.getDelegate() === NOOP_PROVIDER) {
        return undefined;
      }
      const headers = req.headers;
      const parent =
        headers.traceparent === undefined
          ? ROOT_CONTEXT
          : propagation.extract(ROOT_CONTEXT, headers, headerGetter);
      const span = tracer.startSpan(
        method === '_OTHER' ? 'HTTP' : method,
        {
          kind: SpanKind.SERVER,
          attributes: {
            'http.request.method': method,
            'url.path': pathOf(req.url),
            'url.scheme': req.socket?.encrypted ? 'https' : 'http',
          },
        },
        parent,
      );
      if (span.isRecording()) {
        if (method === '_OTHER' && req.method !== undefined) {
          span.setAttribute('http.request.method_original', req.method);
        }
        const url = req.url;
        const q = url === undefined ? -1 : url.indexOf('?');
        if (q !== -1 && url !== undefined) span.setAttribute('url.query', url.slice(q + 1));
        const host = headers.host;
        if (host !== undefined) {
          const colon = host.lastIndexOf(':');
          const hasPort = colon > host.lastIndexOf(']');
          span.setAttribute('server.address', hasPort ? host.slice(0, colon) : host);
          if (hasPort) span.setAttribute('server.port', Number(host.slice(colon + 1)));
        }
        const ua = headers['user-agent'];
        if (ua !== undefined) span.setAttribute('user_agent.original', ua);
        const peer = req.socket?.remoteAddress;
        if (peer !== undefined) span.setAttribute('client.address', peer);
        if (req.httpVersion !== undefined) {
          span.setAttribute('network.protocol.version', req.httpVersion);
        }
      }
      const valid = isSpanContextValid(span.spanContext());
      return { span, context: valid ? trace.setSpan(parent, span) : parent, valid };
    },

    end(started, method, route, status, error) {
      const span = started.span;
      if (span.isRecording()) {
        const base = method === '_OTHER' ? 'HTTP' : method;
        if (route !== undefined) {
          span.updateName(`${base} ${route}`);
          span.setAttribute('http.route', route);
        }
        span.setAttribute('http.response.status_code', status);
        if (error !== undefined) {
          // Anything can be thrown: never String() it (a null-prototype object throws).
          const type = error instanceof Error ? (error.constructor.name ?? 'Error') : '_OTHER';
          span.setAttribute('error.type', type);
          if (error instanceof Error) span.recordException(error);
          span.setStatus({ code: SpanStatusCode.ERROR, message: describeThrown(error) });
        } else if (status >= 500) {
          span.setAttribute('error.type', String(status));
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
      }
      span.end();
    },
  };
}

/** Runs `fn` inside the span's context (nothing to switch to when the span is a no-op). */
export function withServerSpan<R>(started: StartedServerSpan | undefined, fn: () => R): R {
  return started?.valid ? context.with(started.context, fn) : fn();
}
