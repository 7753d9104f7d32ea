import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { AbortedError, ConfigError, HttpError, ShedError, ThrottledError } from '../errors.js';
import { createTestClock } from '../testing/index.js';
import { clientThrottle, isOverloadRejection } from './clientThrottle.js';

/** A seeded PRNG (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const shed = () => new ShedError('shed', { reason: 'limit', retryAfterMs: 1000 });

describe('clientThrottle', () => {
  it('never throttles while the upstream accepts', async () => {
    const t = clientThrottle({ random: seeded(1), clock: createTestClock() });
    for (let i = 0; i < 1_000; i++) await t.execute(async () => i);
    expect(t.probability).toBe(0);
    expect(t.requests).toBe(1_000);
    expect(t.accepts).toBe(1_000);
  });

  it('rejects with max(0, (requests - K*accepts)/(requests + 1)) once the upstream rejects', async () => {
    const clock = createTestClock();
    const t = clientThrottle({ random: seeded(7), clock });
    for (let i = 0; i < 100; i++) await t.execute(async () => i);
    let local = 0;
    let sent = 0;
    for (let i = 0; i < 1_000; i++) {
      await t
        .execute(async () => {
          sent++;
          throw shed();
        })
        .catch((e: unknown) => {
          if (e instanceof ThrottledError) local++;
        });
    }
    // The upstream keeps about K * accepts = 200 sent in the window: p -> (1100 - 200) / 1101.
    expect(t.accepts).toBe(100);
    expect(t.probability).toBeCloseTo((1_100 - 200) / 1_101, 5);
    // Expected local rejections: sum over r = 200..1100 of 1 - 201/(r + 1), about 558.
    expect(local).toBeGreaterThan(480);
    expect(local).toBeLessThan(640);
    expect(sent).toBe(1_000 - local);
    // Throttled locally: not retryable, an overload fault (never counts against the upstream)
    const err = await t.execute(async () => 1).catch((e: unknown) => e);
    if (err instanceof ThrottledError) {
      expect(err.retryable).toBe(false);
      expect(err.code).toBe('TRELLIS_THROTTLED');
    }
  });

  it('forgets after the window: the upstream gets traffic again', async () => {
    const clock = createTestClock();
    const t = clientThrottle({ random: seeded(3), clock, windowMs: 10_000 });
    for (let i = 0; i < 200; i++) await t.execute(() => Promise.reject(shed())).catch(() => 0);
    expect(t.probability).toBeGreaterThan(0.9);
    await clock.advance(10_001);
    expect(t.probability).toBe(0);
    await expect(t.execute(async () => 'ok')).resolves.toBe('ok');
  });

  it('counts 429 and 503 with Retry-After as rejections, other failures as accepted, and ignores caller aborts', () => {
    const http = (status: number, retryAfterMs?: number) =>
      new HttpError('x', { status, body: undefined, headers: {}, retryAfterMs });
    expect(isOverloadRejection(http(429))).toBe(true);
    expect(isOverloadRejection(http(503, 1_000))).toBe(true);
    expect(isOverloadRejection(http(503))).toBe(false);
    expect(isOverloadRejection(http(500))).toBe(false);
    expect(isOverloadRejection(shed())).toBe(true);
    return (async () => {
      const t = clientThrottle({ random: seeded(5), clock: createTestClock() });
      await t.execute(() => Promise.reject(new AbortedError('gone'))).catch(() => 0);
      expect(t.requests).toBe(0);
      await t.execute(() => Promise.reject(http(500))).catch(() => 0);
      expect(t.accepts).toBe(1);
    })();
  });

  it('property: the local rejection rate follows the formula (seeded)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 4 }),
        async (accepted, k) => {
          const t = clientThrottle({ random: seeded(accepted + k), clock: createTestClock(), k });
          for (let i = 0; i < accepted; i++) await t.execute(async () => 0);
          for (let i = 0; i < 300; i++)
            await t.execute(() => Promise.reject(shed())).catch(() => 0);
          const r = t.requests;
          const a = t.accepts;
          expect(a).toBe(accepted);
          expect(t.probability).toBeCloseTo(Math.max(0, (r - k * a) / (r + 1)), 9);
          expect(t.probability).toBeGreaterThanOrEqual(0);
          expect(t.probability).toBeLessThan(1);
        },
      ),
      { seed: 22, numRuns: 50 },
    );
  });

  it('refuses bad options with a ConfigError naming the field', () => {
    expect(() => clientThrottle({ k: 0 })).toThrow(/k/);
    expect(() => clientThrottle({ windowMs: '60' as never })).toThrow(ConfigError);
    expect(() => clientThrottle({ windowMs: 10 })).toThrow(/windowMs/);
  });
});
