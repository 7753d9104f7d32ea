import { context, SpanKind, trace } from '@opentelemetry/api';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { createServerTracing, withServerSpan } from '../src/tracing/index.js';
import { installTracing, TRACE_ID, TRACEPARENT } from './tracingHarness.js';

const req = (headers: Record<string, string> = {}, method = 'GET') => ({
  method,
  url: '/items/1?x=2',
  headers: { host: 'shop.local:8080', 'user-agent': 'test', ...headers },
  httpVersion: '1.1',
  socket: { remoteAddress: '10.0.0.7' },
});

describe('createServerTracing', () => {
  it('does no work at all while no SDK is registered', () => {
    const tracing = createServerTracing();
    expect(tracing.start(req({ traceparent: TRACEPARENT }), 'GET')).toBeUndefined();
    expect(withServerSpan(undefined, () => 42)).toBe(42);
  });

  it('picks up an SDK registered after it was created', async () => {
    const tracing = createServerTracing();
    const harness = installTracing();
    try {
      const started = tracing.start(req({ traceparent: TRACEPARENT }), 'GET');
      expect(started?.valid).toBe(true);
      const inside = withServerSpan(started, () => trace.getSpan(context.active()));
      expect(inside).toBe(started?.span);
      if (started) tracing.end(started, 'GET', '/items/:id', 200);
      const [span] = harness.exporter.getFinishedSpans();
      expect(span?.name).toBe('GET /items/:id');
      expect(span?.kind).toBe(SpanKind.SERVER);
      expect(span?.spanContext().traceId).toBe(TRACE_ID);
      expect(span?.attributes).toMatchObject({
        'http.request.method': 'GET',
        'http.route': '/items/:id',
        'http.response.status_code': 200,
        'url.path': '/items/1',
        'url.query': 'x=2',
        'url.scheme': 'http',
        'server.address': 'shop.local',
        'server.port': 8080,
        'client.address': '10.0.0.7',
        'user_agent.original': 'test',
        'network.protocol.version': '1.1',
      });
    } finally {
      await harness.uninstall();
    }
  });

  it('uses a given tracerProvider; unknown methods are HTTP / _OTHER; errors set status', () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracing = createServerTracing({ tracerProvider });
    const a = tracing.start(req({}, 'BREW'), '_OTHER');
    if (a) tracing.end(a, '_OTHER', undefined, 404);
    const b = tracing.start(req(), 'GET');
    if (b) tracing.end(b, 'GET', '/boom', 500, new TypeError('bad'));
    const [other, boom] = exporter.getFinishedSpans();
    expect(other?.name).toBe('HTTP');
    expect(other?.attributes['http.request.method_original']).toBe('BREW');
    expect(other?.status.code).toBe(0);
    expect(boom?.name).toBe('GET /boom');
    expect(boom?.status.code).toBe(2);
    expect(boom?.attributes['error.type']).toBe('TypeError');
  });

  it('records a non-Error thrown value without String() on it', () => {
    const exporter = new InMemorySpanExporter();
    const tracerProvider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(exporter)],
    });
    const tracing = createServerTracing({ tracerProvider });
    const a = tracing.start(req(), 'GET');
    expect(() => {
      if (a) tracing.end(a, 'GET', '/odd', 500, Object.create(null));
    }).not.toThrow();
    const [odd] = exporter.getFinishedSpans();
    expect(odd?.attributes['error.type']).toBe('_OTHER');
    expect(odd?.status).toMatchObject({ code: 2, message: 'a non-Error object' });
  });

  it('rejects a bad tracerProvider naming the field', () => {
    // @ts-expect-error not a TracerProvider
    expect(() => createServerTracing({ tracerProvider: {} })).toThrow(/tracerProvider/);
  });
});
