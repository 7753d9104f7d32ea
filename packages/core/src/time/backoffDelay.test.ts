import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { backoffDelay, backoffSchema } from './backoff.js';

const resolve = (input: object) => backoffSchema.parse(input);

describe('backoffDelay', () => {
  it('grows exponentially and caps without jitter', () => {
    const b = resolve({ initialMs: 100, maxMs: 1000, factor: 2, jitter: 'none' });
    const delays = [1, 2, 3, 4, 5].map((n) => backoffDelay(b, n, 0, Math.random));
    expect(delays).toEqual([100, 200, 400, 800, 1000]);
  });

  it('constant stays at initialMs; equal jitter stays in [d/2, d]', () => {
    const c = resolve({ kind: 'constant', initialMs: 50, jitter: 'none' });
    expect(backoffDelay(c, 7, 0, Math.random)).toBe(50);
    const e = resolve({ kind: 'constant', initialMs: 50, jitter: 'equal' });
    expect(backoffDelay(e, 1, 0, () => 0)).toBe(25);
    expect(backoffDelay(e, 1, 0, () => 0.999999)).toBeCloseTo(50, 3);
  });

  it('full jitter (the default) picks in [0, d]', () => {
    const b = resolve({});
    expect(backoffDelay(b, 1, 0, () => 0)).toBe(0);
    expect(backoffDelay(b, 2, 0, () => 0.5)).toBe(100);
  });

  it('decorrelated jitter uses the previous delay', () => {
    const b = resolve({ kind: 'decorrelated', initialMs: 10, maxMs: 1000 });
    expect(backoffDelay(b, 1, 0, () => 1)).toBe(30);
    expect(backoffDelay(b, 2, 30, () => 1)).toBe(90);
    expect(backoffDelay(b, 3, 90, () => 0)).toBe(10);
  });

  it('property: every delay is within [0, maxMs] (and >= initialMs for decorrelated)', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('exponential', 'constant', 'decorrelated'),
        fc.constantFrom('full', 'equal', 'none'),
        fc.integer({ min: 0, max: 5_000 }),
        fc.integer({ min: 0, max: 60_000 }),
        fc.double({ min: 1, max: 10, noNaN: true }),
        fc.array(fc.double({ min: 0, max: 0.999999, noNaN: true }), {
          minLength: 1,
          maxLength: 30,
        }),
        (kind, jitter, initialMs, extra, factor, randoms) => {
          const b = resolve({ kind, jitter, initialMs, maxMs: initialMs + extra, factor });
          let previous = 0;
          randoms.forEach((r, i) => {
            const d = backoffDelay(b, i + 1, previous, () => r);
            expect(d).toBeGreaterThanOrEqual(
              kind === 'decorrelated' ? Math.min(initialMs, b.maxMs) : 0,
            );
            expect(d).toBeLessThanOrEqual(b.maxMs);
            previous = d;
          });
        },
      ),
    );
  });
});
