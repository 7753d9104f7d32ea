import { once } from 'node:events';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { SpanKind, trace } from '@opentelemetry/api';
import express5 from 'express';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasEngine, promtoolCheck } from '../../../testing/engines.js';
import { trellis } from '../src/express.js';
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

// Express 4 is installed under the npm alias `express4` (no types of its own: same API shape).
const express4 = createRequire(import.meta.url)('express4') as typeof express5;

const flavours = [
  ['Express 5', express5],
  ['Express 4', express4],
] as const;

describe.each(flavours)('%s adapter', (_name, express) => {
  let server: Server | undefined;
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
    if (server?.listening) {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    }
  });

  /** A health and a metrics object without defaults, for a test that builds its own app. */
  function fresh(): void {
    health = createHealth({ signals: false });
    metrics = createMetrics({ defaultMetrics: false });
  }

  async function start(workMs = 0) {
    health = createHealth({ signals: false, drainDelayMs: 50, shutdownTimeoutMs: 5_000 });
    metrics = createMetrics();
    const app = express();
    app.use(trellis({ health, metrics, echoRequestId: true, trustDeadline: true }));
    app.get('/items/:id', (req, res) => {
      const ctx = getRequestContext();
      const span = trace.getActiveSpan();
      const send = () =>
        res.json({
          id: req.params.id,
          requestId: ctx?.requestId,
          traceId: ctx?.traceId,
          remaining: remainingMs(),
          activeSpan: span?.spanContext().spanId,
        });
      if (workMs > 0) setTimeout(send, workMs);
      else send();
    });
    const api = express.Router();
    api.get('/orders/:orderId', (_req, res) => {
      res.status(201).send('created');
    });
    api.get('/boom', () => {
      throw new Error('boom');
    });
    app.use('/api', api);
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    health.attach(server);
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** Listens on port 0 (closed after the test); the base URL. */
  async function listen(app: { listen: typeof express5.application.listen }): Promise<string> {
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  /** The exposition counts `n` GET requests of `route` answered 200. */
  function expectServed(text: string, route: string, n: number) {
    expect(text).toContain(
      `http_server_request_duration_seconds_count{http_request_method="GET",http_route="${route}",http_response_status_code="200"} ${n}`,
    );
  }

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
    const spans = tracing.exporter.getFinishedSpans();
    const span = spans.find((s) => s.name === 'GET /items/:id');
    expect(span).toBeDefined();
    expect(span?.kind).toBe(SpanKind.SERVER);
    expect(span?.spanContext().traceId).toBe(TRACE_ID);
    expect(span?.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID);
    expect(span?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'http.route': '/items/:id',
      'http.response.status_code': 200,
      'url.path': '/items/7',
      'url.scheme': 'http',
      'server.address': '127.0.0.1',
    });
    // The handler ran inside the span and the request context.
    expect(body.activeSpan).toBe(span?.spanContext().spanId);
    expect(body.traceId).toBe(TRACE_ID);
    expect(body.requestId).toBe(res.headers.get('x-request-id'));
    expect(body.remaining).toBeGreaterThan(0);
    expect(body.remaining).toBeLessThanOrEqual(1500);
  });

  it('marks 5xx spans as errors', async () => {
    await start();
    await fetch(`${base}/api/boom`);
    await new Promise((r) => setImmediate(r));
    const span = tracing.exporter.getFinishedSpans().find((s) => s.name === 'GET /api/boom');
    expect(span?.status.code).toBe(2);
    expect(span?.attributes['error.type']).toBe('500');
  });

  it('shuts down under load without resetting an accepted request', async () => {
    await start(10);
    let ok = 0;
    let stop = false;
    const worker = async () => {
      while (!stop) {
        try {
          const res = await fetch(`${base}/items/1`);
          await res.text();
          if (res.status === 200) ok++;
        } catch {
          // Refused, or a keep-alive socket closed before the request reached the server:
          // either way not an accepted request (those are counted by the server below).
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
    // Every request the server accepted was answered in full, and none was cut off (499).
    expect(ok).toBe(served);
    expect(text).not.toContain('http_response_status_code="499"');
    expect(server?.listening).toBe(false);
  });

  it('requestContext: false skips the AsyncLocalStorage context but still echoes the id', async () => {
    fresh();
    const app = express();
    app.use(trellis({ metrics, requestContext: false, echoRequestId: true }));
    app.get('/ctx', (_req, res) => {
      res.json({ ctx: getRequestContext() ?? null });
    });
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/ctx`);
    expect(await res.json()).toEqual({ ctx: null });
    expect(res.headers.get('x-request-id')).toMatch(/^[0-9a-f]{12}-/);
  });

  it('observes later requests (opened before Express takes them) like the first', async () => {
    await start();
    const bodies: Record<string, unknown>[] = [];
    const ids: (string | null)[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${base}/items/${i}`, {
        headers: { traceparent: TRACEPARENT, 'x-trellis-deadline-ms': '1500' },
      });
      bodies.push((await res.json()) as Record<string, unknown>);
      ids.push(res.headers.get('x-request-id'));
    }
    await new Promise((r) => setImmediate(r));
    const spans = tracing.exporter.getFinishedSpans().filter((s) => s.name === 'GET /items/:id');
    expect(spans).toHaveLength(3);
    for (const [i, body] of bodies.entries()) {
      expect(body.requestId).toBe(ids[i]);
      expect(body.traceId).toBe(TRACE_ID);
      expect(body.activeSpan).toBe(spans[i]?.spanContext().spanId);
      expect(body.remaining).toBeGreaterThan(0);
      expect(spans[i]?.parentSpanContext?.spanId).toBe(PARENT_SPAN_ID);
      expect(spans[i]?.attributes['url.path']).toBe(`/items/${i}`);
    }
    expect(new Set(ids).size).toBe(3);
    const text = await metrics.text();
    expectServed(text, '/items/:id', 3);
    expect(text).toContain('http_server_active_requests 0');
  });

  it('leaves requests that never reach the middleware unobserved, first or later', async () => {
    fresh();
    const app = express();
    app.use('/early', (_req, res) => {
      res.send('answered before trellis');
    });
    app.use(trellis({ metrics, echoRequestId: true }));
    app.get('/late', (_req, res) => {
      res.send('late');
    });
    const url = await listen(app);
    for (const path of ['/early', '/late', '/early', '/late', '/early']) {
      const res = await fetch(url + path);
      expect(res.status).toBe(200);
      expect(res.headers.has('x-request-id')).toBe(path === '/late');
      await res.text();
    }
    const text = await metrics.text();
    expectServed(text, '/late', 2);
    expect(text).not.toMatch(/http_route="(\/early|unmatched)"/);
    expect(text).toContain('http_server_active_requests 0');
  });

  it('observes a request once when the middleware is on its way twice', async () => {
    fresh();
    const app = express();
    const middleware = trellis({ metrics, echoRequestId: true });
    app.use(middleware);
    const router = express.Router();
    router.use(middleware);
    router.get('/twice', (_req, res) => {
      res.json({ requestId: getRequestContext()?.requestId });
    });
    app.use(router);
    const url = `${await listen(app)}/twice`;
    for (let i = 0; i < 3; i++) {
      const res = await fetch(url);
      expect(((await res.json()) as { requestId: string }).requestId).toBe(
        res.headers.get('x-request-id'),
      );
    }
    const text = await metrics.text();
    expectServed(text, '/twice', 3);
    expect(text).toContain('http_server_active_requests 0');
  });

  it('works in a mounted sub-app, recording the mount path in the template', async () => {
    fresh();
    const sub = express();
    sub.use(trellis({ metrics, echoRequestId: true }));
    sub.get('/things/:id', (req, res) => {
      res.json({ id: req.params.id, requestId: getRequestContext()?.requestId });
    });
    const app = express();
    app.get('/outside', (_req, res) => {
      res.send('not observed');
    });
    app.use('/sub', sub);
    const url = await listen(app);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${url}/sub/things/${i}`);
      expect(await res.json()).toEqual({
        id: String(i),
        requestId: res.headers.get('x-request-id'),
      });
      expect((await fetch(`${url}/outside`)).headers.has('x-request-id')).toBe(false);
    }
    const text = await metrics.text();
    expectServed(text, '/sub/things/:id', 3);
    expect(text).not.toContain('/outside');
    expect(text).toContain('http_server_active_requests 0');
  });

  it('nested apps with an adapter each: both record the request, and both gauges return to 0', async () => {
    fresh();
    const innerMetrics = createMetrics({ defaultMetrics: false });
    const inner = express();
    inner.use(trellis({ metrics: innerMetrics }));
    inner.get('/x/:id', (req, res) => {
      res.json({ id: req.params.id });
    });
    // The inner app first serves on its own, so its adapter prepares it as a top-level app.
    const alone = inner.listen(0, '127.0.0.1');
    await once(alone, 'listening');
    await (await fetch(`http://127.0.0.1:${(alone.address() as AddressInfo).port}/x/0`)).text();
    alone.closeAllConnections();
    alone.close();
    const outer = express();
    outer.use(trellis({ metrics }));
    outer.use('/in', inner);
    const url = await listen(outer);
    for (let i = 1; i <= 3; i++) {
      expect(await (await fetch(`${url}/in/x/${i}`)).json()).toEqual({ id: String(i) });
    }
    const outerText = await metrics.text();
    expectServed(outerText, '/in/x/:id', 3);
    expect(outerText).toContain('http_server_active_requests 0');
    const innerText = await innerMetrics.text();
    expectServed(innerText, '/x/:id', 1);
    expectServed(innerText, '/in/x/:id', 3);
    expect(innerText).toContain('http_server_active_requests 0');
    innerMetrics.close();
  });

  it('echoes the request id only when asked (echoRequestId)', async () => {
    fresh();
    const app = express();
    app.use(trellis({ metrics }));
    app.get('/id', (_req, res) => {
      res.json({ requestId: getRequestContext()?.requestId });
    });
    const url = `${await listen(app)}/id`;
    const res = await fetch(url, { headers: { 'x-request-id': 'from-caller' } });
    expect(await res.json()).toEqual({ requestId: 'from-caller' });
    expect(res.headers.has('x-request-id')).toBe(false);
    const generated = await fetch(url);
    expect(((await generated.json()) as { requestId: string }).requestId).toMatch(
      /^[0-9a-f]{12}-[0-9a-z]+$/,
    );
    expect(generated.headers.has('x-request-id')).toBe(false);
  });

  it('rejects bad options naming the field', () => {
    expect(() => trellis({ basePath: 'x/' })).toThrow(/basePath/);
    // @ts-expect-error echoRequestId is a boolean
    expect(() => trellis({ echoRequestId: 'yes' })).toThrow(/echoRequestId/);
    // @ts-expect-error metrics must come from createMetrics()
    expect(() => trellis({ metrics: {} })).toThrow(/metrics/);
  });
});
