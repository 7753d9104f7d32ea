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
