/**
 * Metrics that are there without asking (issue 21): the gateway's `/metrics` carries process and
 * Node.js default metrics, each instance's breaker state per route, and counts the gateway's own
 * 401, 403, 413, 429 and 503 answers by route, code and status; no sample has an empty label
 * value, and promtool accepts the exposition.
 */
import { createMetrics } from '@trellis/core';
import { afterEach, describe, expect, it } from 'vitest';
import { hasEngine, promtoolCheck } from '../../../testing/engines.js';
import { hashApiKey } from '../src/index.js';
import { startGateway, startUpstream } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

const KEY = 'reader-secret-key-1';

describe('gateway /metrics', () => {
  it('has default metrics, breaker states and counts the gateway’s own refusals', async () => {
    const held: (() => void)[] = [];
    let arrived: (() => void) | undefined;
    const up = await startUpstream((req, res) => {
      if (req.url?.startsWith('/held')) {
        held.push(() => res.end('late'));
        arrived?.();
      } else res.end('ok');
    });
    cleanup.push(() => up.close());
    const { gateway, url, adminUrl } = await startGateway({
      auth: { apiKeys: { keys: { reader: { sha256: hashApiKey(KEY) } } } },
      routes: [
        {
          name: 'keys',
          path: '/keys',
          upstream: up.url,
          auth: { apiKey: true, scopes: ['admin'] },
        },
        { name: 'small', path: '/small', upstream: up.url, maxBodyBytes: 4 },
        { name: 'rl', path: '/rl', upstream: up.url, rateLimit: { limit: 1, windowMs: 60_000 } },
        {
          name: 'held',
          path: '/held',
          upstream: up.url,
          concurrency: { adaptive: { min: 1, max: 1, initial: 1 } },
        },
        { name: 'iso', path: '/iso', upstream: up.url },
      ],
    });
    cleanup.push(() => gateway.close());
    expect((await fetch(`${url}/keys`)).status).toBe(401);
    expect((await fetch(`${url}/keys`, { headers: { 'x-api-key': KEY } })).status).toBe(403);
    expect((await fetch(`${url}/small`, { method: 'POST', body: 'too large' })).status).toBe(413);
    expect((await fetch(`${url}/rl`)).status).toBe(200);
    expect((await fetch(`${url}/rl`)).status).toBe(429);
    const first = fetch(`${url}/held`);
    while (held.length === 0) await new Promise<void>((r) => (arrived = r));
    expect((await fetch(`${url}/held`)).status).toBe(503);
    for (const h of held.splice(0)) h();
    expect((await first).status).toBe(200);
    const breaker = encodeURIComponent(`iso/127.0.0.1:${up.port}`);
    await fetch(`${adminUrl}/admin/breakers/${breaker}/isolate`, { method: 'POST' });
    expect((await fetch(`${url}/iso`)).status).toBe(503);

    const text = await (await fetch(`${adminUrl}/metrics`)).text();
    // Process and Node.js default metrics.
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
    expect(text).toMatch(/^nodejs_eventloop_lag_seconds /m);
    // The gateway's own answers, by route, code and status.
    const errors = (route: string, status: number) =>
      new RegExp(
        `^trellis_gateway_errors_total\\{route="${route}",code="TRELLIS_[A-Z_]+",status="${status}"\\} 1$`,
        'm',
      );
    expect(text).toMatch(errors('keys', 401));
    expect(text).toMatch(errors('keys', 403));
    expect(text).toMatch(errors('small', 413));
    expect(text).toMatch(errors('rl', 429));
    expect(text).toMatch(errors('held', 503));
    expect(text).toMatch(errors('iso', 503));
    expect(text).toContain(
      'trellis_gateway_errors_total{route="held",code="TRELLIS_SHED",status="503"} 1',
    );
    // Breaker state per route and instance.
    const instance = `127.0.0.1:${up.port}`;
    expect(text).toContain(
      `trellis_gateway_breaker_state{route="iso",instance="${instance}",state="open"} 1`,
    );
    expect(text).toContain(
      `trellis_gateway_breaker_state{route="keys",instance="${instance}",state="closed"} 1`,
    );
    // The status registry's metrics.
    expect(text).toMatch(/^trellis_service_instances\{service="iso",state="healthy"\} 1$/m);
    expect(text).not.toMatch(/=""/);
    if (hasEngine('promtool')) {
      const check = promtoolCheck(text);
      expect(check.output).toBe(check.ok ? check.output : '');
      expect(check.ok).toBe(true);
    }
  });

  it('adds its metrics once to an injected registry shared by two gateways', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const metrics = createMetrics();
    const a = await startGateway(
      { routes: [{ name: 'a', path: '/', upstream: up.url }] },
      { metrics },
    );
    const b = await startGateway(
      { routes: [{ name: 'b', path: '/', upstream: up.url }] },
      { metrics },
    );
    cleanup.push(
      () => a.gateway.close(),
      () => b.gateway.close(),
    );
    const text = await metrics.text();
    expect(text.match(/^# TYPE process_cpu_user_seconds_total/gm)).toHaveLength(1);
    expect(text).toMatch(/trellis_gateway_breaker_state\{route="a",[^}]*state="closed"\} 1/);
    expect(text).toMatch(/trellis_gateway_breaker_state\{route="b",[^}]*state="closed"\} 1/);
    await a.gateway.close();
    const after = await metrics.text();
    expect(after).not.toMatch(/trellis_gateway_breaker_state\{route="a"/);
    expect(after).toMatch(/trellis_gateway_breaker_state\{route="b"/);
  });
});
