import { describe, expect, it } from 'vitest';
import { Backoff } from './Backoff.js';

describe('Backoff', () => {
  it('doubles up to the cap, with jitter in [d/2, d], and resets', () => {
    const lo = new Backoff(100, 1_000, () => 0);
    const hi = new Backoff(100, 1_000, () => 0.999999);
    expect([lo.next(), lo.next(), lo.next(), lo.next(), lo.next()]).toEqual([
      50, 100, 200, 400, 500,
    ]);
    const top = [hi.next(), hi.next(), hi.next(), hi.next(), hi.next()].map(Math.round);
    expect(top).toEqual([100, 200, 400, 800, 1000]);
    expect(lo.attempts).toBe(5);
    lo.reset();
    expect(lo.next()).toBe(50);
  });
});
