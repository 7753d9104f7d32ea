import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Backoff, backoffDelay, backoffSchema } from './backoff.js';
import { MAX_DELAY_MS } from './duration.js';

describe('backoff', () => {
  it('every delay is within [0, maxMs] for any options and retry number', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('exponential', 'constant', 'decorrelated'),
        fc.constantFrom('full', 'equal', 'none'),
        fc.integer({ min: 0, max: MAX_DELAY_MS }),
        fc.integer({ min: 0, max: MAX_DELAY_MS }),
        fc.double({ min: 1, max: 1e6, noNaN: true }),
        fc.integer({ min: 1, max: 1e9 }),
        fc.double({ min: 0, max: 0.999999, noNaN: true }),
        (kind, jitter, a, b, factor, n, r) => {
          const resolved = backoffSchema.parse({
            kind,
            jitter,
            initialMs: Math.min(a, b),
            maxMs: Math.max(a, b),
            factor,
          });
          const d = backoffDelay(resolved, n, Math.max(a, b), () => r);
          expect(d).toBeGreaterThanOrEqual(0);
          expect(d).toBeLessThanOrEqual(resolved.maxMs);
        },
      ),
      { seed: 1701, numRuns: 1_000 },
    );
  });

  it('refuses a cap a timer cannot hold, naming the field', () => {
    expect(() => new Backoff({ maxMs: 2 ** 31 })).toThrow(/maxMs: must be at most 2147483647/);
  });

  it('a stateful Backoff grows, caps and resets (equal jitter: half fixed)', () => {
    const b = new Backoff({ initialMs: 200, maxMs: 1_000, jitter: 'equal' }, () => 0);
    expect([b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 500]);
    expect(b.attempts).toBe(4);
    b.reset();
    expect(b.next()).toBe(100);
  });
});
