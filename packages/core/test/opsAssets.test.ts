// ops/: the Prometheus alert rules pass promtool (check + unit tests), and every metric the
// Grafana dashboard and the rules query is one that real Trellis components expose on a live
// /metrics (an Express service with a typed client, instrumented resilience policies, a
// balancer and budget in a status registry, and a gateway). No sample has an empty label value.
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { roundRobin, staticDiscovery } from '@trellis/discovery';
import { createGateway } from '@trellis/gateway';
import { createOutbox } from '@trellis/outbox';
import {
  bulkhead,
  circuitBreaker,
  fallback,
  hedge,
  instrument,
  pipeline,
  rateLimit,
  retry,
  retryBudget,
  timeout,
} from '@trellis/resilience';
import express from 'express';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { findBinary, hasEngine } from '../../../testing/engines.js';
import { trellis } from '../src/express.js';
import { createClient, createMetrics, createStatusRegistry, statusMetrics } from '../src/index.js';

const ops = join(import.meta.dirname, '../../../ops');
const rules = join(ops, 'prometheus/trellis-alerts.yml');
const ruleTests = join(ops, 'prometheus/trellis-alerts.test.yml');
const dashboard = JSON.parse(readFileSync(join(ops, 'grafana/trellis-dashboard.json'), 'utf8'));

/**
 * Metrics the dashboard and rules name that no component on this branch exposes yet. Each
 * needs a reason; the test fails if one of them shows up (then it belongs in the checked set).
 */
const PENDING: Record<string, string> = {};

const havePromtool = hasEngine('promtool');

describe.skipIf(!havePromtool)('Prometheus alert rules', () => {
  const promtool = findBinary('promtool') as string;
  it('pass promtool check rules', () => {
    const out = execFileSync(promtool, ['check', 'rules', rules], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS: 6 rules found/);
  });
  it('pass their promtool unit tests', () => {
    const out = execFileSync(promtool, ['test', 'rules', ruleTests], {
      encoding: 'utf8',
      cwd: join(ops, 'prometheus'),
    });
    expect(out).toMatch(/SUCCESS/);
  });
});

function exprsOf(value: unknown, out: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) exprsOf(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if ((k === 'expr' || k === 'definition') && typeof v === 'string') out.push(v);
      else if (k === 'query' && typeof v === 'object') exprsOf(v, out);
      else if (k === 'query' && typeof v === 'string' && v !== 'prometheus') out.push(v);
      else exprsOf(v, out);
    }
  }
  return out;
}

/** Metric names in PromQL expressions (ours start with `trellis_` or `http_`). */
function metricNames(exprs: string[]): Set<string> {
  const names = new Set<string>();
  for (const expr of exprs) {
    // Label matchers and grouping clauses name labels, not metrics.
    const e = expr
      .replace(/\{[^}]*\}/g, '')
      .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, '');
    for (const m of e.matchAll(/\b((?:trellis|http)_[a-z0-9_]+)\b/g)) names.add(m[1] as string);
  }
  return names;
}

function get(url: string): Promise<string> {
  return new Promise((resolve, reject) => {
    request(url, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => resolve(body));
    })
      .on('error', reject)
      .end();
  });
}

async function liveMetrics(): Promise<string> {
  const metrics = createMetrics();
  const registry = metrics.registry;
  const status = createStatusRegistry({ service: 'ops-test' });
  const offStatus = statusMetrics(status, metrics);

  // An upstream for the typed client and the gateway.
  const upstream = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  }).listen(0, '127.0.0.1');
  await once(upstream, 'listening');
  const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;

  // Resilience policies, instrumented; a budget and a balancer in the status registry.
  const budget = retryBudget({ name: 'upstream-retries', status });
  const policy = instrument(
    pipeline(
      fallback(() => ({ ok: true })),
      retry({ budget, maxAttempts: 2 }),
      circuitBreaker({ name: 'upstream' }),
      hedge({ delayMs: 1000 }),
      timeout(1000),
      bulkhead({ limit: 4 }),
      rateLimit({ points: 1000, durationMs: 1000 }),
    ),
    { registry, name: 'upstream' },
  );
  const discovery = staticDiscovery({ services: { upstream: [upstreamUrl] } });
  const balancer = roundRobin({ name: 'upstream', status });
  const client = createClient({
    service: 'upstream',
    resolver: discovery,
    balancer,
    policy,
    metrics,
    endpoints: { ping: { method: 'GET', path: '/ping', response: z.object({ ok: z.boolean() }) } },
  });

  const app = express();
  app.use(trellis({ metrics }));
  app.get('/ping/:id', async (_req, res) => {
    res.json(await client.ping());
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');

  // An outbox on PGlite with a named relay (trellis_outbox_*, the lag gauge per relay).
  const db = new PGlite();
  const outbox = createOutbox({ db, topics: { 'order-placed': z.object({}) }, metrics });
  await outbox.migrate();
  const relay = outbox.relay({ name: 'orders-outbox', deliver: async () => {}, status });
  await relay.idle();
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const gateway = createGateway(
    { routes: [{ path: '/api', upstream: { urls: [upstreamUrl] } }] },
    { metrics },
  );
  const gw = createServer(gateway.handler).listen(0, '127.0.0.1');
  await once(gw, 'listening');
  try {
    await get(`${base}/ping/1`);
    await get(`http://127.0.0.1:${(gw.address() as AddressInfo).port}/api`);
    await get(`http://127.0.0.1:${(gw.address() as AddressInfo).port}/nowhere`);
    balancer.eject(`127.0.0.1:${(upstream.address() as AddressInfo).port}`);
    return await get(`${base}/metrics`);
  } finally {
    await relay.stop();
    await db.close();
    offStatus();
    server.close();
    gw.close();
    upstream.close();
    upstream.closeAllConnections();
    await gateway.close();
    await client.close();
    await discovery.close();
    balancer.close();
    budget.close();
    status.close();
  }
}

describe('Grafana dashboard and alert rules', () => {
  it('name only metrics real Trellis components expose, and no sample has an empty label', async () => {
    const text = await liveMetrics();
    const exposed = new Set<string>();
    for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      const [, name, type] = m as unknown as [string, string, string];
      exposed.add(name);
      if (type === 'histogram')
        for (const s of ['_bucket', '_sum', '_count']) exposed.add(name + s);
    }
    const queried = metricNames([
      ...exprsOf(dashboard),
      ...[...readFileSync(rules, 'utf8').matchAll(/expr: (?:>-\n)?([\s\S]*?)\n\s+for:/g)].map(
        (m) => m[1] as string,
      ),
    ]);
    expect(queried.size).toBeGreaterThan(20);
    const missing = [...queried].filter((n) => !exposed.has(n) && !(n in PENDING));
    expect(missing).toEqual([]);
    for (const name of Object.keys(PENDING)) expect(exposed.has(name)).toBe(false);
    // Every dashboard panel area has its metric live.
    for (const name of [
      'http_server_request_duration_seconds_bucket',
      'http_client_request_duration_seconds_count',
      'trellis_circuit_state',
      'trellis_retry_budget_available',
      'trellis_bulkhead_running',
      'trellis_rate_limit_rejected_total',
      'trellis_service_instances',
      'trellis_status_events_total',
      'trellis_gateway_upstream_request_duration_seconds_count',
      'trellis_outbox_lag_seconds',
    ]) {
      expect(exposed, name).toContain(name);
    }
    const samples = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
    expect(samples.length).toBeGreaterThan(50);
    expect(samples.filter((l) => /=""/.test(l))).toEqual([]);
    expect(text).toMatch(/trellis_outbox_lag_seconds\{relay="orders-outbox"\} 0/);
    expect(text).toMatch(/trellis_service_instances\{service="upstream",state="ejected"\} 1/);
    expect(text).toMatch(
      /trellis_status_events_total\{kind="service",source="upstream",type="ejected"\} 1/,
    );
  });
});
