import { ConfigError, createMetrics } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { bulkhead } from './bulkhead.js';
import { circuitBreaker } from './circuitBreaker.js';
import { fallback } from './fallback.js';
import { instrument, metricNames } from './instrument.js';
import { pipeline } from './pipeline.js';
import { retry } from './retry.js';
import { timeout } from './timeout.js';

async function value(registry: Registry, name: string, labels: Record<string, string>) {
  const metric = registry.getSingleMetric(name);
  if (!metric) return undefined;
  const data = await metric.get();
  return data.values.find((v) =>
    Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l),
  )?.value;
}

describe('instrument', () => {
  it('records breaker, retry and timeout metrics of a pipeline', async () => {
    const clock = createTestClock();
    const registry = new Registry();
    const breaker = circuitBreaker({ clock, consecutiveFailures: 2 });
    const policy = instrument(
      pipeline(
        retry({ clock, maxAttempts: 2, backoff: { initialMs: 0, maxMs: 0 }, maxRetryAfterMs: 0 }),
        breaker,
        timeout({ ms: 100, clock }),
      ),
      { registry, name: 'billing' },
    );
    await policy.execute(async () => 'ok');
    await policy.execute(() => Promise.reject(new Error('down'))).catch(() => {});
    await policy.execute(async () => 'never runs').catch(() => {});
    expect(
      await value(registry, metricNames.circuitCalls, { name: 'billing', result: 'success' }),
    ).toBe(1);
    expect(
      await value(registry, metricNames.circuitCalls, { name: 'billing', result: 'failure' }),
    ).toBe(2);
    expect(
      await value(registry, metricNames.circuitCalls, { name: 'billing', result: 'rejected' }),
    ).toBe(1);
    expect(
      await value(registry, metricNames.circuitState, { name: 'billing', state: 'open' }),
    ).toBe(1);
    expect(
      await value(registry, metricNames.circuitState, { name: 'billing', state: 'closed' }),
    ).toBe(0);
    expect(
      await value(registry, metricNames.circuitTransitions, {
        name: 'billing',
        from: 'closed',
        to: 'open',
      }),
    ).toBe(1);
    expect(await value(registry, metricNames.retryAttempts, { name: 'billing' })).toBe(1);
    expect(
      await value(registry, metricNames.retryGiveUps, { name: 'billing', reason: 'attempts' }),
    ).toBe(1);
    // A retry never waits on an open breaker: it gives up at once.
    expect(
      await value(registry, metricNames.retryGiveUps, { name: 'billing', reason: 'circuit-open' }),
    ).toBe(1);
    breaker.reset();
    const hang = policy.execute(() => new Promise(() => {}));
    const caught = hang.catch((e: unknown) => e);
    await clock.advance(100);
    await clock.advance(100);
    await caught;
    expect(await value(registry, metricNames.timeouts, { name: 'billing' })).toBe(2);
  });

  it('reuses metrics already on the registry, and reads gauges at scrape time', async () => {
    const registry = new Registry();
    const a = instrument(bulkhead({ limit: 1, queue: 1 }), { registry, name: 'a' });
    expect(() => instrument(bulkhead({ limit: 1 }), { registry, name: 'b' })).not.toThrow();
    let open!: () => void;
    const running = a.execute(() => new Promise<void>((r) => (open = r)));
    const queued = a.execute(async () => 'second');
    expect(await value(registry, metricNames.bulkheadRunning, { name: 'a' })).toBe(1);
    expect(await value(registry, metricNames.bulkheadQueueDepth, { name: 'a' })).toBe(1);
    expect(await value(registry, metricNames.bulkheadQueueDepth, { name: 'b' })).toBe(0);
    await a.execute(async () => 'third').catch(() => {});
    expect(await value(registry, metricNames.bulkheadRejected, { name: 'a' })).toBe(1);
    open();
    await Promise.all([running, queued]);
    expect(await value(registry, metricNames.bulkheadQueueDepth, { name: 'a' })).toBe(0);
    const f = instrument(fallback(0), { registry, name: 'f' });
    await f.execute(() => Promise.reject(new Error('x')));
    expect(await value(registry, metricNames.fallbacks, { name: 'f' })).toBe(1);
  });

  it('never touches the global registry', async () => {
    const { register } = await import('prom-client');
    const before = register.getMetricsAsArray().length;
    instrument(circuitBreaker(), { registry: new Registry(), name: 'x' });
    expect(register.getMetricsAsArray().length).toBe(before);
  });

  it("accepts core's createMetrics() registry, in either exposition format", async () => {
    for (const openMetrics of [false, true]) {
      const metrics = createMetrics({ defaultMetrics: false });
      const registry = metrics.registry;
      if (openMetrics) registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
      const policy = instrument(retry({ maxAttempts: 1 }), { registry, name: 'core' });
      await policy.execute(async () => 'ok');
      expect(await registry.getSingleMetricAsString('trellis_retry_attempts_total')).toContain(
        'trellis_retry_attempts_total',
      );
      metrics.close();
    }
  });

  it('rejects bad options naming the field', () => {
    expect(() => instrument(retry(), { registry: {} as never, name: 'x' })).toThrow(ConfigError);
    expect(() => instrument(retry(), { registry: {} as never, name: 'x' })).toThrow(/registry/);
    expect(() => instrument(retry(), { registry: new Registry(), name: 'a b' })).toThrow(/name/);
  });
});
