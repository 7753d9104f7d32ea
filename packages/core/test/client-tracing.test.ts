import { context, propagation, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient, type Policy } from '../src/index.js';
import { json, startServer, type TestServer } from './clientServer.js';

const endpoints = {
  getItem: { method: 'GET', path: '/items/:id', response: z.object({ id: z.string() }) },
} as const;

/** Three attempts while the error is retryable. */
const threeAttempts: Policy = {
  async execute(fn, opts) {
    const signal = opts?.signal ?? new AbortController().signal;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn({ signal, attempt });
      } catch (err) {
        if ((err as { retryable?: boolean }).retryable !== true || attempt === 3) throw err;
      }
    }
  },
};

describe('createClient tracing (OpenTelemetry SDK with an in-memory exporter)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const contextManager = new AsyncLocalStorageContextManager();
  let server: TestServer;
  let calls = 0;

  beforeAll(async () => {
    context.setGlobalContextManager(contextManager.enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
    trace.setGlobalTracerProvider(provider);
    server = await startServer((req, res) => {
      calls++;
      if (req.url === '/items/flaky' && calls % 3 !== 0) json(res, 503, { busy: true });
      else if (req.url === '/items/missing') json(res, 404, { error: 'nope' });
      else json(res, 200, { id: 'a' });
    });
  });
  afterAll(async () => {
    await server.close();
    await provider.shutdown();
    trace.disable();
    propagation.disable();
    context.disable();
  });
  afterEach(() => {
    exporter.reset();
    server.requests.length = 0;
  });

  it('creates a CLIENT span per semconv and injects its traceparent', async () => {
    const client = createClient({ baseUrl: server.url, endpoints });
    const parent = provider.getTracer('test').startSpan('parent');
    await context.with(trace.setSpan(context.active(), parent), () =>
      client.getItem({ params: { id: 'a' } }),
    );
    parent.end();
    await client.close();

    const spans = exporter.getFinishedSpans().filter((s) => s.name !== 'parent');
    expect(spans).toHaveLength(1);
    const span = spans[0];
    if (span === undefined) throw new Error('no span');
    expect(span.name).toBe('GET /items/{id}');
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(span.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': server.port,
      'url.full': `${server.url}/items/a`,
      'url.template': '/items/{id}',
      'http.response.status_code': 200,
    });
    expect(span.attributes['http.request.resend_count']).toBeUndefined();
    expect(span.status.code).toBe(SpanStatusCode.UNSET);

    const traceparent = server.requests[0]?.headers.traceparent;
    const { traceId, spanId } = span.spanContext();
    expect(traceparent).toBe(`00-${traceId}-${spanId}-01`);
  });

  it('propagates tracestate from the active context', async () => {
    const client = createClient({ baseUrl: server.url, endpoints });
    const carrier = {
      traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
      tracestate: 'vendor=abc',
    };
    const extracted = propagation.extract(context.active(), carrier);
    await context.with(extracted, () => client.getItem({ params: { id: 'a' } }));
    await client.close();
    const headers = server.requests[0]?.headers;
    expect(headers?.traceparent).toMatch(/^00-0af7651916cd43dd8448eb211c80319c-[0-9a-f]{16}-01$/);
    expect(headers?.tracestate).toBe('vendor=abc');
  });

  it('makes one span per attempt with http.request.resend_count', async () => {
    calls = 0;
    const client = createClient({ baseUrl: server.url, endpoints, policy: threeAttempts });
    await client.getItem({ params: { id: 'flaky' } });
    await client.close();
    const spans = exporter.getFinishedSpans();
    expect(spans).toHaveLength(3);
    expect(spans.map((s) => s.attributes['http.request.resend_count'])).toEqual([undefined, 1, 2]);
    expect(spans.map((s) => s.attributes['http.response.status_code'])).toEqual([503, 503, 200]);
    expect(spans[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(spans[0]?.attributes['error.type']).toBe('503');
    expect(spans[2]?.status.code).toBe(SpanStatusCode.UNSET);
    // Each attempt sent its own span as the parent.
    const parents = server.requests.map((r) => String(r.headers.traceparent).split('-')[2]);
    expect(parents).toEqual(spans.map((s) => s.spanContext().spanId));
  });

  it('sends spans to the tracerProvider option instead of the global one', async () => {
    const own = new InMemorySpanExporter();
    const ownProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(own)],
    });
    const client = createClient({ baseUrl: server.url, endpoints, tracerProvider: ownProvider });
    await client.getItem({ params: { id: 'a' } });
    await client.close();
    expect(own.getFinishedSpans().map((s) => s.name)).toEqual(['GET /items/{id}']);
    expect(exporter.getFinishedSpans()).toHaveLength(0);
    await ownProvider.shutdown();
  });

  it('marks 4xx and connection failures as span errors with error.type', async () => {
    const client = createClient({ baseUrl: server.url, endpoints });
    await client.getItem({ params: { id: 'missing' } }).catch(() => undefined);
    await client.close();
    const refused = createClient({ baseUrl: 'http://127.0.0.1:1', endpoints });
    await refused.getItem({ params: { id: 'a' } }).catch(() => undefined);
    await refused.close();
    const [notFound, failed] = exporter.getFinishedSpans();
    expect(notFound?.status.code).toBe(SpanStatusCode.ERROR);
    expect(notFound?.attributes['error.type']).toBe('404');
    expect(failed?.status.code).toBe(SpanStatusCode.ERROR);
    expect(failed?.attributes['error.type']).toBe('connection_error');
    expect(failed?.attributes['http.response.status_code']).toBeUndefined();
  });
});
