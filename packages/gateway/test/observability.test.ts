/** Metrics (validated by promtool), health on the gateway or a loopback admin port, tracing. */
import { SpanKind } from '@opentelemetry/api';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { freePort, hasEngine, promtoolCheck } from '../../../testing/engines.js';
import {
  installTracing,
  TRACE_ID,
  TRACEPARENT,
  type TracingHarness,
} from '../../core/test/tracingHarness.js';
import { startGateway, startUpstream, type Upstream } from './helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function upstream(handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const u = await startUpstream(handler);
  cleanup.push(() => u.close());
  return u;
}

describe('metrics and health', () => {
  it('serves /metrics with server and upstream histograms per route', async () => {
    const up = await upstream();
    const g = await startGateway({
      routes: [{ name: 'users', path: '/users', upstream: { urls: [up.url] } }],
    });
    cleanup.push(() => g.gateway.close());
    await (await fetch(`${g.url}/users/1`)).text();
    await (await fetch(`${g.url}/nowhere`)).text();
    // Secure default: /metrics is on the admin listener, not on the public port.
    expect((await fetch(`${g.url}/metrics`)).status).toBe(404);
    const text = await (await fetch(`${g.adminUrl}/metrics`)).text();
    expect(text).toMatch(
      /http_server_request_duration_seconds_count\{[^}]*http_route="users"[^}]*\} 1/,
    );
    expect(text).toMatch(
      /trellis_gateway_upstream_request_duration_seconds_count\{route="users",upstream="127\.0\.0\.1:\d+",status="200"\} 1/,
    );
    expect(text).toMatch(
      /http_server_request_duration_seconds_count\{[^}]*http_response_status_code="404"/,
    );
    expect(text).toContain(
      'trellis_gateway_errors_total{route="unmatched",code="TRELLIS_GATEWAY_NO_ROUTE",status="404"} 2',
    );
    if (hasEngine('promtool')) {
      const check = promtoolCheck(text);
      expect(check.output).toBe(check.ok ? check.output : '');
      expect(check.ok).toBe(true);
    }
    const health = await fetch(`${g.url}/health/ready`);
    expect(health.status).toBe(200);
    expect(health.headers.get('content-type')).toContain('application/health+json');
  });

  it('admin.mode "port" serves /health and /metrics on a separate loopback port, not on the gateway', async () => {
    const up = await upstream();
    const adminPort = await freePort();
    const g = await startGateway({
      routes: [{ path: '/', upstream: { urls: [up.url] } }],
      admin: { mode: 'port', port: adminPort },
    });
    cleanup.push(() => g.gateway.close());
    expect((await fetch(`http://127.0.0.1:${adminPort}/metrics`)).status).toBe(200);
    // On the gateway port /metrics is just another path, proxied to the upstream.
    const proxied = await fetch(`${g.url}/metrics`);
    expect(await proxied.json()).toMatchObject({ url: '/metrics' });
  });
});

describe('tracing', () => {
  let tracing: TracingHarness;
  beforeAll(() => {
    tracing = installTracing();
  });
  afterAll(async () => {
    await tracing.uninstall();
  });

  it('one CLIENT span per upstream attempt, traceparent propagated with the span as parent', async () => {
    const good = await upstream();
    // First instance refuses: a retried GET makes two attempts.
    const refused = `http://127.0.0.1:${await freePort()}`;
    const g = await startGateway({
      routes: [
        {
          name: 'r',
          path: '/',
          upstream: { urls: [refused, good.url], balancer: 'roundRobin' },
          circuitBreaker: false,
        },
      ],
    });
    cleanup.push(() => g.gateway.close());
    tracing.exporter.reset();
    let attempts = 0;
    for (let i = 0; i < 2; i++) {
      const res = await fetch(`${g.url}/t`, { headers: { traceparent: TRACEPARENT } });
      expect(res.status).toBe(200);
    }
    const spans = tracing.exporter.getFinishedSpans().filter((s) => s.kind === SpanKind.CLIENT);
    attempts = spans.length;
    // Two requests answered 200 (two good attempts), plus one failed attempt per visit to the
    // refusing instance (round robin sends each request there first).
    const failed = spans.filter((s) => s.status.code === 2).length;
    expect(failed).toBeGreaterThanOrEqual(1);
    expect(attempts).toBe(2 + failed);
    for (const s of spans) expect(s.spanContext().traceId).toBe(TRACE_ID);
    const metrics = await (await fetch(`${g.adminUrl}/metrics`)).text();
    expect(metrics).toContain(`trellis_gateway_retries_total{route="r"} ${failed}`);
    const sent = good.seen.map((s) => String(s.headers.traceparent));
    const okSpanIds = spans.filter((s) => s.status.code !== 2).map((s) => s.spanContext().spanId);
    for (const tp of sent) {
      expect(tp.startsWith(`00-${TRACE_ID}-`)).toBe(true);
      expect(okSpanIds).toContain(tp.split('-')[2]);
    }
  });
});
