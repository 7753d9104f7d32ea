import { once } from 'node:events';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, trace } from '@opentelemetry/api';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEngine, promtoolCheck } from '../../../testing/engines.js';
import { trellis } from '../src/fastify.js';
import {
  createHealth,
  createMetrics,
  getRequestContext,
  type Health,
  type Metrics,
  remainingMs,
} from '../src/index.js';
import {
  installTracing,
  PARENT_SPAN_ID,
  TRACE_ID,
  TRACEPARENT,
  type TracingHarness,
} from './tracingHarness.js';

let app: FastifyInstance | undefined;
let health: Health;
let metrics: Metrics;
let tracing: TracingHarness;
let base: string;

beforeAll(() => {
  tracing = installTracing();
});
afterAll(() => tracing.uninstall());

afterEach(async () => {
  health.close();
  metrics.close();
  tracing.exporter.reset();
  if (app?.server.listening) {
    app.server.closeAllConnections();
    await app.close();
  }
});

async function start(workMs = 0, extra?: (app: FastifyInstance) => void) {
  health = createHealth({ signals: false, drainDelayMs: 50, shutdownTimeoutMs: 5_000 });
  metrics = createMetrics();
  app = Fastify();
  await app.register(trellis, { health, metrics, echoRequestId: true, trustDeadline: true });
  app.get<{ Params: { id: string } }>('/items/:id', async (req) => {
    if (workMs > 0) await new Promise((r) => setTimeout(r, workMs));
    const ctx = getRequestContext();
    return {
      id: req.params.id,
      requestId: ctx?.requestId,
      traceId: ctx?.traceId,
      remaining: remainingMs(),
      activeSpan: trace.getActiveSpan()?.spanContext().spanId,
    };
  });
  app.register(
    async (api) => {
      api.get('/orders/:orderId', async (_req, reply) => reply.code(201).send('created'));
      api.get('/boom', async () => {
        throw new Error('boom');
      });
    },
    { prefix: '/api' },
  );
  extra?.(app);
  await app.listen({ port: 0, host: '127.0.0.1' });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}

describe('Fastify adapter', () => {
  it('serves the health endpoints as application/health+json', async () => {
    await start();
    for (const path of ['/health', '/health/live', '/health/ready']) {
      const res = await fetch(base + path);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/health+json');
      expect(await res.json()).toMatchObject({ status: 'pass' });
    }
    void health.shutdown();
    const res = await fetch(`${base}/health/ready`);
    expect(res.status).toBe(503);
    expect(await res.json()).toMatchObject({ status: 'fail' });
  });

  it('records every route by template, unmatched ones under one label; promtool passes', async () => {
    await start();
    await fetch(`${base}/items/1`);
    await fetch(`${base}/items/2`);
    expect((await fetch(`${base}/api/orders/9`)).status).toBe(201);
    expect((await fetch(`${base}/api/boom`)).status).toBe(500);
    expect((await fetch(`${base}/no/such/1`)).status).toBe(404);
    expect((await fetch(`${base}/no/such/2`)).status).toBe(404);
    const res = await fetch(`${base}/metrics`);
    expect(res.headers.get('content-type')).toBe(metrics.contentType);
    const text = await res.text();
    const count = (labels: string) =>
      new RegExp(`http_server_request_duration_seconds_count\\{${labels}\\} (\\d+)`).exec(
        text,
      )?.[1];
    expect(
      count('http_request_method="GET",http_route="/items/:id",http_response_status_code="200"'),
    ).toBe('2');
    expect(
      count(
        'http_request_method="GET",http_route="/api/orders/:orderId",http_response_status_code="201"',
      ),
    ).toBe('1');
    expect(
      count('http_request_method="GET",http_route="/api/boom",http_response_status_code="500"'),
    ).toBe('1');
    expect(
      count('http_request_method="GET",http_route="unmatched",http_response_status_code="404"'),
    ).toBe('2');
    expect(text).not.toContain('/no/such');
    expect(text).toContain('http_server_active_requests 1');
    if (hasEngine('promtool')) expect(promtoolCheck(text)).toEqual({ ok: true, output: '' });
  });

  it('creates a SERVER span per request, continuing the incoming traceparent', async () => {
    await start();
    const res = await fetch(`${base}/items/7`, {
      headers: { traceparent: TRACEPARENT, 'x-trellis-deadline-ms': '1500' },
    });
    const body = (await res.json()) as Record<string, unknown>;
    await new Promise((r) => setImmediate(r));
    const span = tracing.exporter.getFinishedSpans().find((s) => s.name === 'GET /items/:id');
    expect(span?.kind).toBe(SpanKind.SERVER);
    expect(span?.spanContext().traceId).toBe(TRACE_ID);
    expect(span?.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID);
    expect(span?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/items/:id',
      'http.response.status_code': 200,
      'url.path': '/items/7',
    });
    expect(body.activeSpan).toBe(span?.spanContext().spanId);
    expect(body.traceId).toBe(TRACE_ID);
    expect(body.requestId).toBe(res.headers.get('x-request-id'));
    expect(body.remaining).toBeGreaterThan(0);
    expect(body.remaining).toBeLessThanOrEqual(1500);
  });

  it('shuts down under load without resetting an accepted request, then closes Fastify', async () => {
    const closed: string[] = [];
    await start(10, (a) =>
      a.addHook('onClose', async () => {
        closed.push('fastify onClose');
      }),
    );
    health.addCleanup(() => {
      closed.push('cleanup');
    });
    let ok = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        try {
          const res = await fetch(`${base}/items/1`);
          await res.text();
          if (res.status === 200) ok++;
        } catch {
          stop = true;
        }
        if (health.state === 'stopped') stop = true;
      }
    };
    const workers = Array.from({ length: 8 }, worker);
    await new Promise((r) => setTimeout(r, 50));
    await health.shutdown();
    stop = true;
    await Promise.all(workers);
    const text = await metrics.text();
    const served = Number(
      /http_server_request_duration_seconds_count\{http_request_method="GET",http_route="\/items\/:id",http_response_status_code="200"\} (\d+)/.exec(
        text,
      )?.[1],
    );
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBe(served);
    expect(text).not.toContain('http_response_status_code="499"');
    // Cleanup hooks run last-registered first: ours, then the plugin's fastify.close().
    expect(closed).toEqual(['cleanup', 'fastify onClose']);
    expect(app?.server.listening).toBe(false);
  });

  it('fastify.close() runs the shutdown sequence (hooks), skipping the drain delay', async () => {
    await start();
    const ran: string[] = [];
    health.addCleanup(() => {
      ran.push('cleanup');
    });
    health.addDeregistration(() => {
      ran.push('deregister');
    });
    await app?.close();
    expect(ran).toEqual(['deregister', 'cleanup']);
    expect(health.state).toBe('stopped');
  });

  it('observes routes registered before the plugin, also through inject()', async () => {
    health = createHealth({ signals: false });
    metrics = createMetrics({ defaultMetrics: false });
    app = Fastify();
    app.get('/early/:id', async () => 'early');
    await app.register(trellis, { metrics });
    expect((await app.inject('/early/1')).statusCode).toBe(200);
    expect(await metrics.text()).toMatch(
      /_count\{http_request_method="GET",http_route="\/early\/:id",http_response_status_code="200"\} 1/,
    );
  });

  it('records a request whose client went away before the answer as 499', async () => {
    let closed!: () => void;
    const clientGone = new Promise<void>((r) => {
      closed = r;
    });
    await start(0, (a) =>
      a.get('/slow', async (req) => {
        req.raw.on('close', closed);
        await clientGone;
        return 'too late';
      }),
    );
    const req = request(`${base}/slow`);
    req.on('error', () => {});
    req.end();
    await once(req, 'socket');
    while (!/http_server_active_requests 1/.test(await metrics.text())) {
      await new Promise((r) => setTimeout(r, 5));
    }
    req.destroy();
    await clientGone;
    let text = '';
    for (let i = 0; i < 200 && !text.includes('"499"'); i++) {
      await new Promise((r) => setTimeout(r, 5));
      text = await metrics.text();
    }
    expect(text).toMatch(/http_route="\/slow",http_response_status_code="499"\} 1/);
  });

  it('echoes the request id only when asked (echoRequestId)', async () => {
    health = createHealth({ signals: false });
    metrics = createMetrics({ defaultMetrics: false });
    app = Fastify();
    await app.register(trellis, { metrics });
    app.get('/id', async () => ({ requestId: getRequestContext()?.requestId }));
    const res = await app.inject({ url: '/id', headers: { 'x-request-id': 'from-caller' } });
    expect(res.json()).toEqual({ requestId: 'from-caller' });
    expect(res.headers['x-request-id']).toBeUndefined();
    await app.close();
  });

  it('rejects bad options naming the field', async () => {
    const f = Fastify();
    await expect(f.register(trellis, { basePath: 'x/' })).rejects.toThrow(/basePath/);
    await f.close();
    // A failed registration sticks to its instance, so a fresh one for the next case.
    const g = Fastify();
    // @ts-expect-error echoRequestId is a boolean
    await expect(g.register(trellis, { echoRequestId: 1 })).rejects.toThrow(/echoRequestId/);
    await g.close();
    health = createHealth({ signals: false });
    metrics = createMetrics({ defaultMetrics: false });
  });
});
