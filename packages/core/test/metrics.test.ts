import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { hasEngine, promtoolCheck } from '../../../testing/engines.js';
import {
  createHealth,
  createMetrics,
  createObservabilityHandler,
  createRequestObserver,
  getRequestContext,
  type Health,
  type Metrics,
} from '../src/index.js';

let server: Server | undefined;
let metrics: Metrics | undefined;
let health: Health | undefined;

afterEach(async () => {
  metrics?.close();
  health?.close();
  if (server) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
  server = undefined;
});

async function start(): Promise<string> {
  metrics = createMetrics();
  health = createHealth({
    signals: false,
    checks: { cache: { check: () => false, critical: false } },
  });
  const observe = createObservabilityHandler({ health, metrics });
  const observer = createRequestObserver({ metrics, tracing: false, echoRequestId: true });
  server = createServer((req, res) => {
    const o = observer.observe(req, res);
    if (observe(req, res)) return;
    if (req.url?.startsWith('/items/')) o.route = '/items/:id';
    observer.run(o, () => {
      const ctx = getRequestContext();
      res.setHeader('content-type', 'application/json');
      res.statusCode = o.route ? 200 : 404;
      res.end(JSON.stringify({ requestId: ctx?.requestId }));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('observability handler on a real server', () => {
  it('serves /metrics that promtool accepts, labelled by route template', async () => {
    const base = await start();
    for (const id of [1, 2, 3]) expect((await fetch(`${base}/items/${id}`)).status).toBe(200);
    expect((await fetch(`${base}/nope/1`)).status).toBe(404);
    const res = await fetch(`${base}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(metrics?.contentType);
    const text = await res.text();
    expect(text).toMatch(
      /http_server_request_duration_seconds_count\{http_request_method="GET",http_route="\/items\/:id",http_response_status_code="200"\} 3/,
    );
    expect(text).toContain('http_route="unmatched",http_response_status_code="404"');
    expect(text).not.toContain('/items/1');
    expect(text).toContain('process_cpu_seconds_total');
    if (hasEngine('promtool')) {
      const check = promtoolCheck(text);
      expect(check.output).toBe('');
      expect(check.ok).toBe(true);
    }
  });

  it('serves the health endpoints as application/health+json', async () => {
    const base = await start();
    const res = await fetch(`${base}/health/ready?verbose=1`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/health+json');
    expect(await res.json()).toMatchObject({
      status: 'warn',
      checks: { 'cache:responseTime': [{ status: 'fail' }] },
    });
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    const head = await fetch(`${base}/health`, { method: 'HEAD' });
    expect([head.status, await head.text()]).toEqual([200, '']);
    expect((await fetch(`${base}/health`, { method: 'POST' })).status).toBe(404);
    void health?.shutdown();
    expect((await fetch(`${base}/health/ready`)).status).toBe(503);
  });

  it('puts the request id into the context and echoes it', async () => {
    const base = await start();
    const res = await fetch(`${base}/items/1`, { headers: { 'x-request-id': 'abc-123' } });
    expect(res.headers.get('x-request-id')).toBe('abc-123');
    expect(await res.json()).toEqual({ requestId: 'abc-123' });
    const generated = await fetch(`${base}/items/1`);
    const again = await fetch(`${base}/items/1`);
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f]{12}-[0-9a-z]+$/);
    expect(again.headers.get('x-request-id')).not.toBe(generated.headers.get('x-request-id'));
  });

  it('honours basePath and answers only what it was given', async () => {
    metrics = createMetrics({ defaultMetrics: false });
    const observe = createObservabilityHandler({ metrics, basePath: '/_internal' });
    server = createServer((req, res) => {
      if (observe(req, res)) return;
      res.statusCode = 404;
      res.end();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect((await fetch(`${base}/_internal/metrics`)).status).toBe(200);
    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    expect((await fetch(`${base}/_internal/health`)).status).toBe(404);
    expect(() => createObservabilityHandler({ basePath: 'x/' })).toThrow(/basePath/);
  });
});
