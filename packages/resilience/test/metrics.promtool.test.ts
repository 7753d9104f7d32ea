import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { hasEngine, promtoolCheck } from '../../../testing/engines.js';
import {
  adaptiveLimit,
  bulkhead,
  circuitBreaker,
  fallback,
  hedge,
  instrument,
  metricNames,
  pipeline,
  rateLimit,
  retry,
  timeout,
} from '../src/index.js';

describe.skipIf(!hasEngine('promtool'))('resilience metrics pass promtool', () => {
  it('exposes every metric in valid exposition format', async () => {
    const registry = new Registry();
    const limit = rateLimit({ points: 1 });
    instrument(
      pipeline(
        fallback('x'),
        limit,
        retry({ maxAttempts: 2, backoff: { initialMs: 0, maxMs: 0 } }),
        circuitBreaker(),
        bulkhead({ limit: 2 }),
        hedge({ delayMs: 5 }),
        timeout(100),
        adaptiveLimit(),
      ),
      { registry, name: 'orders' },
    );
    const text = await registry.metrics();
    for (const name of Object.values(metricNames)) expect(text).toContain(`# TYPE ${name} `);
    const check = promtoolCheck(text);
    expect(check.output).toBe('');
    expect(check.ok).toBe(true);
    limit.close();
  });
});
