/**
 * Issue 18 item 2, for every policy: whatever a function throws (an `Object.create(null)`, a
 * symbol, a proxy whose every read throws, ...) comes out of the policy as that very value.
 */
import type { Policy } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bulkhead } from './bulkhead.js';
import { circuitBreaker } from './circuitBreaker.js';
import { fallback } from './fallback.js';
import { hedge } from './hedge.js';
import { keyedCircuitBreaker } from './keyedCircuitBreaker.js';
import { pipeline } from './pipeline.js';
import { rateLimit } from './rateLimit.js';
import { retry } from './retry.js';
import { timeout } from './timeout.js';

const hostileProxy = () =>
  new Proxy(
    {},
    {
      get() {
        throw new Error('no reads');
      },
      getPrototypeOf() {
        throw new Error('no prototype');
      },
      has() {
        throw new Error('no has');
      },
    },
  );

const policies = (): [string, Policy][] => {
  const clock = createTestClock();
  return [
    ['retry', retry({ clock, maxAttempts: 1 })],
    ['circuitBreaker', circuitBreaker({ clock, consecutiveFailures: 1_000_000 })],
    [
      'keyedCircuitBreaker',
      keyedCircuitBreaker({ clock, consecutiveFailures: 1_000_000 }).get('k'),
    ],
    ['timeout', timeout({ ms: 1_000, clock })],
    ['bulkhead', bulkhead({ limit: 1, clock })],
    ['hedge', hedge({ delayMs: 1_000, clock, idempotent: true })],
    ['fallback (when says no)', fallback('fallback', { when: () => false })],
    [
      'fallback (default when) around a retry that rethrows',
      pipeline(
        fallback((e: unknown) => Promise.reject(e)),
        retry({ clock, maxAttempts: 1 }),
      ),
    ],
    ['rateLimit', rateLimit({ points: 1_000_000 })],
    [
      'pipeline of all',
      pipeline(
        retry({ clock, maxAttempts: 1 }),
        circuitBreaker({ clock, consecutiveFailures: 1_000_000 }),
        timeout({ ms: 1_000, clock }),
        bulkhead({ limit: 1, clock }),
      ),
    ],
  ];
};

describe('every policy passes any thrown value through', () => {
  for (const [name, policy] of policies()) {
    it(`${name}: a proxy whose every read throws, and anything fast-check builds`, async () => {
      const proxy = hostileProxy();
      const err = await policy
        .execute(async () => {
          throw proxy;
        })
        .then(
          () => ['resolved'],
          // Wrapped: resolving a promise with the proxy itself would read its `then`.
          (e: unknown) => [e],
        );
      expect(err[0] === proxy).toBe(true);
      await fc.assert(
        fc.asyncProperty(
          fc.anything({ withNullPrototype: true, withBigInt: true }),
          async (value) => {
            const out = await policy
              .execute(async () => {
                throw value;
              })
              .then(
                () => ({ resolved: true }),
                (e: unknown) => ({ rejected: e }),
              );
            expect('rejected' in out && Object.is(out.rejected, value)).toBe(true);
          },
        ),
        { seed: 1813, numRuns: 100 },
      );
    });
  }
});
