// Components of @trellis/resilience and @trellis/discovery register with a status registry and
// a typed client given metrics instruments its own policy (core imports neither package; these
// are dev-time checks of the StatusSource and INSTRUMENT_POLICY contracts).

import type { IncomingMessage, ServerResponse } from 'node:http';
import { roundRobin } from '@trellis/discovery';
import {
  bulkhead,
  circuitBreaker,
  instrument,
  keyedCircuitBreaker,
  pipeline,
  rateLimit,
  retry,
  retryBudget,
} from '@trellis/resilience';
import { describe, expect, expectTypeOf, it, vi } from 'vitest';
import { z } from 'zod';
import {
  createAdminHandler,
  createClient,
  createHealth,
  createMetrics,
  createStatusRegistry,
  type RequestLogFields,
  requestContextMixin,
  type StatusDocument,
  type StatusEvent,
  StatusNameTakenError,
  type StatusRegistryLike,
  type StatusSource,
} from '../src/index.js';
import { createTestClock } from '../src/testing/index.js';
import { json, startServer } from './clientServer.js';

describe('status registration', () => {
  it('breakers, keyed breakers, budgets, bulkheads and rate limits register; close() unregisters', async () => {
    const status = createStatusRegistry();
    const events: StatusEvent[] = [];
    status.onEvent((e) => events.push(e));
    const breaker = circuitBreaker({ name: 'payments', consecutiveFailures: 1, status });
    const keyed = keyedCircuitBreaker({ name: 'per-host', status });
    keyed.get('10.0.0.1:80');
    keyed.get('10.0.0.2:80');
    const budget = retryBudget({ name: 'payments', status, ratio: 0, minRetriesPerSecond: 0.1 });
    const pool = bulkhead({ name: 'db', limit: 2, status });
    const limit = rateLimit({ name: 'api', points: 1, status });
    expect(status.snapshot().components.map((c) => `${c.kind}:${c.name}`)).toEqual([
      'breaker:payments',
      'breaker:per-host/10.0.0.1:80',
      'breaker:per-host/10.0.0.2:80',
      'budget:payments',
      'bulkhead:db',
      'rateLimit:api',
    ]);
    expect(() => circuitBreaker({ name: 'payments', status })).toThrow(StatusNameTakenError);

    status.get('payments', 'breaker')?.isolate?.();
    expect(breaker.isolated).toBe(true);
    expect(events.at(-1)).toMatchObject({
      source: 'payments',
      kind: 'breaker',
      type: 'state-change',
      severity: 'error',
      data: { from: 'closed', to: 'open', reason: 'isolated' },
    });
    expect(budget.tryWithdraw()).toBe(true);
    expect(budget.tryWithdraw()).toBe(false);
    expect(budget.tryWithdraw()).toBe(false);
    expect(events.filter((e) => e.type === 'budget-exhausted')).toHaveLength(1);
    expect(status.snapshot().components.find((c) => c.kind === 'budget')).toMatchObject({
      available: 0,
      capacity: 1,
      exhausted: true,
    });
    expect(status.snapshot().components.find((c) => c.kind === 'bulkhead')).toMatchObject({
      running: 0,
      maxConcurrent: 2,
      queued: 0,
      maxQueue: 0,
    });

    await limit.consume('k');
    await limit.consume('k');
    expect(status.get('api', 'rateLimit')?.snapshot()).toEqual({
      limitPerWindow: 1,
      windowMs: 1000,
      rejected: 1,
    });
    limit.close();
    keyed.delete('10.0.0.1:80');
    breaker.close();
    budget.close();
    pool.close();
    expect(status.names()).toEqual(['per-host/10.0.0.2:80']);
    keyed.close();
    expect(status.names()).toEqual([]);
  });

  it('a balancer registers its instances with latency, requests and ejection state', async () => {
    const clock = createTestClock();
    const status = createStatusRegistry();
    const events: StatusEvent[] = [];
    status.onEvent((e) => events.push(e));
    const balancer = roundRobin({
      name: 'users',
      status,
      clock,
      outlier: { consecutiveFailures: 2, maxEjectionPercent: 50 },
    });
    const instances = [
      { id: 'a', url: 'http://a' },
      { id: 'b', url: 'http://b' },
    ];
    for (let i = 0; i < 4; i++) {
      const pick = balancer.pick(instances);
      pick?.done({ ok: pick.instance.id !== 'a', durationMs: 12 });
    }
    const svc = status.snapshot().components[0];
    expect(svc).toMatchObject({ name: 'users', kind: 'service', balancer: 'RoundRobin' });
    const list = svc?.instances as { id: string; ejected: boolean; requests: number }[];
    expect(list.find((i) => i.id === 'a')).toMatchObject({
      ejected: true,
      ejectionReason: 'consecutive-failures',
      requests: 2,
      failures: 2,
      latencyMs: 12,
    });
    expect(events.map((e) => e.type)).toEqual(['ejected']);
    const source = status.get('users', 'service');
    expect(source?.restore?.('a')).toBe(true);
    expect(source?.eject?.('b')).toBe(true);
    expect(source?.eject?.('nope')).toBe(false);
    expect(balancer.isEjected('a')).toBe(false);
    expect(balancer.isEjected('b')).toBe(true);
    clock.advance(10 * 60_000); // a manual ejection lasts until restored
    expect(balancer.isEjected('b')).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['ejected', 'restored', 'ejected']);
    balancer.close();
    expect(status.names()).toEqual([]);
  });
});

describe('a typed client given metrics instruments its policy', () => {
  it('records breaker and retry metrics under the client name, once, unless told not to', async () => {
    const server = await startServer((_req, res) => json(res, 200, { ok: true }));
    const endpoints = {
      ping: { method: 'GET', path: '/ping', response: z.object({ ok: z.boolean() }) },
    } as const;
    try {
      const metrics = createMetrics();
      const status = createStatusRegistry();
      const breaker = circuitBreaker();
      const policy = pipeline(retry({ maxAttempts: 2 }), breaker);
      instrument(policy, { registry: metrics.registry, name: 'users' }); // and again by the client
      const client = createClient({
        baseUrl: server.url,
        name: 'users',
        endpoints,
        policy,
        metrics,
        status,
      });
      await client.ping();
      const text = await metrics.text();
      expect(text).toContain('trellis_circuit_state{name="users",state="closed"} 1');
      expect(text).toContain('trellis_circuit_calls_total{name="users",result="success"} 1');
      expect(status.snapshot().components).toMatchObject([
        { name: 'users', kind: 'client', baseUrl: server.url, endpoints: ['ping'], closed: false },
      ]);
      await client.close();
      expect(status.names()).toEqual([]);

      const other = createMetrics();
      const plain = createClient({
        baseUrl: server.url,
        endpoints,
        policy: pipeline(retry(), circuitBreaker()),
        metrics: other,
        instrumentPolicy: false,
      });
      await plain.ping();
      expect(await other.text()).not.toContain('trellis_circuit_state');
      await plain.close();

      const auto = createMetrics();
      const named = createClient({
        baseUrl: server.url,
        endpoints,
        policy: circuitBreaker(),
        metrics: auto,
      });
      await named.ping();
      const host = new URL(server.url).host;
      expect(await auto.text()).toContain(`trellis_circuit_state{name="${host}",state="closed"} 1`);
      await named.close();
    } finally {
      await server.close();
    }
  });
});

describe('createStatusRegistry', () => {
  it('validates names and options, keeps recent events, survives a throwing snapshot', () => {
    const status = createStatusRegistry({ keepEvents: 2, now: () => 1000 });
    expect(() => status.register('', { kind: 'x', snapshot: () => ({}) })).toThrow(
      StatusNameTakenError,
    );
    expect(() => status.register('a b', { kind: 'x', snapshot: () => ({}) })).toThrow(
      /invalid name/,
    );
    expect(() => createStatusRegistry({ keepEvents: -1 } as never)).toThrow(/keepEvents/);
    status.register('boom', {
      kind: 'relay',
      snapshot: () => {
        throw new Error('db down');
      },
    });
    expect(status.snapshot().components).toEqual([
      { name: 'boom', kind: 'relay', error: 'db down' },
    ]);
    for (const m of ['one', 'two', 'three']) status.emit('boom', { type: 't', message: m });
    expect(status.snapshot().events.map((e) => [e.seq, e.message, e.kind, e.time])).toEqual([
      [2, 'two', 'relay', 1000],
      [3, 'three', 'relay', 1000],
    ]);
    let closed = 0;
    status.onClose(() => closed++);
    status.close();
    status.close();
    expect(closed).toBe(1);
    expect(status.closing).toBe(true);
    expect(status.snapshot().events.at(-1)?.type).toBe('shutdown');
  });
});

describe('the health entry', () => {
  it('shows check results and reports a check that changes status', async () => {
    let up = true;
    let t = 0;
    const health = createHealth({
      signals: false,
      checks: { db: { check: () => up, critical: true } },
    });
    const status = createStatusRegistry({ health, now: () => t, healthRefreshMs: 1000 });
    const events: StatusEvent[] = [];
    status.onEvent((e) => events.push(e));
    const checksOf = () =>
      status.snapshot().components.find((c) => c.kind === 'health')?.checks as Record<
        string,
        string
      >;
    await vi.waitFor(() => expect(checksOf()).toEqual({ 'db:responseTime': 'pass' }));
    up = false;
    t = 500; // within healthRefreshMs: no new run
    checksOf();
    await new Promise((r) => setImmediate(r));
    expect(checksOf()).toEqual({ 'db:responseTime': 'pass' });
    t = 1500;
    await vi.waitFor(() => expect(checksOf()).toEqual({ 'db:responseTime': 'fail' }));
    expect(events).toMatchObject([
      {
        source: 'health',
        kind: 'health',
        type: 'check',
        severity: 'error',
        message: 'db:responseTime: pass -> fail',
      },
    ]);
    status.close();
    health.close();
  });
});

describe('status types', () => {
  it('keeps the public shapes', () => {
    const status = createStatusRegistry();
    expectTypeOf(status.snapshot()).toEqualTypeOf<StatusDocument>();
    expectTypeOf(status.register).parameter(1).toEqualTypeOf<StatusSource>();
    expectTypeOf(status.register).returns.toEqualTypeOf<() => void>();
    expectTypeOf<StatusSource['kind']>().toExtend<string>();
    expectTypeOf(createAdminHandler).returns.toExtend<
      (req: IncomingMessage, res: ServerResponse) => void
    >();
    expectTypeOf(requestContextMixin()).toEqualTypeOf<RequestLogFields>();
    // A registry is what every component's `status` option takes.
    expectTypeOf(status).toExtend<StatusRegistryLike>();
    status.close();
  });
});
