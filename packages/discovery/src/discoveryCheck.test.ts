import type { Instance } from '@trellis/core';
import { createHealth } from '@trellis/core/health';
import { describe, expect, it } from 'vitest';
import { discoveryCheck, type StatusSource } from './discoveryCheck.js';
import type { ServiceStatus } from './ServiceTable.js';
import { staticDiscovery } from './staticDiscovery.js';

/** A status source whose freshness the test sets directly. */
function source(statuses: Record<string, Partial<ServiceStatus>>): StatusSource {
  return {
    resolve: async () => [] as Instance[],
    status: (service) => ({
      service,
      instances: [],
      stale: false,
      staleForMs: 0,
      updatedAt: 0,
      error: undefined,
      ...statuses[service],
    }),
  };
}
const one: Instance[] = [{ id: 'a:1', url: 'http://a:1' }];

describe('discoveryCheck', () => {
  it('passes while every list is fresh and non-empty', async () => {
    const d = staticDiscovery({ services: { users: ['http://a:1'] } });
    const c = discoveryCheck({ discovery: d, services: ['users'] });
    expect(await c.check()).toEqual({ status: 'pass', observedValue: 0, observedUnit: 'ms' });
    await d.close();
  });

  it('warns while a list is stale or empty, and fails only past failAfterMs', async () => {
    const err = new Error('connect ECONNREFUSED');
    const stale = source({
      users: { instances: one, stale: true, staleForMs: 12_000, error: err },
      billing: { instances: [] },
    });
    const warn = await discoveryCheck({ discovery: stale, services: ['users', 'billing'] }).check();
    expect(warn).toMatchObject({ status: 'warn', observedValue: 12_000 });
    expect(warn.output).toBe(
      'users: stale for 12000 ms, serving 1 last known instance(s) (connect ECONNREFUSED); billing: no instances',
    );
    const fail = await discoveryCheck({
      discovery: stale,
      services: ['users'],
      failAfterMs: 10_000,
    }).check();
    expect(fail.status).toBe('fail');
  });

  it("plugs into core's createHealth as a non-critical check", async () => {
    const stale = source({
      users: { instances: one, stale: true, staleForMs: 5, error: new Error('x') },
    });
    const health = createHealth({
      signals: false,
      checks: { discovery: discoveryCheck({ discovery: stale, services: ['users'] }) },
    });
    const report = await health.report();
    expect(report.body.checks?.['discovery:staleness']?.[0]).toMatchObject({
      status: 'warn',
      observedValue: 5,
    });
    health.close();
  });
});
