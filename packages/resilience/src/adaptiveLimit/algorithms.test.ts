import { describe, expect, it } from 'vitest';
import { Aimd } from './aimd.js';
import { Gradient2 } from './gradient2.js';
import { Vegas } from './vegas.js';
import { Windowed } from './windowed.js';

describe('gradient2 (Netflix Gradient2Limit)', () => {
  it('grows by queueSize·smoothing while latency holds, and not while app-limited', () => {
    const g = new Gradient2(20, 20, 200);
    g.update({ rttMs: 10, inFlight: 20, dropped: false });
    // gradient 1 (tolerance 1.5 · long 10 / short 10 clamps to 1): 20·0.8 + (20 + 4)·0.2
    expect(g.limit).toBeCloseTo(20.8, 9);
    g.update({ rttMs: 10, inFlight: 5, dropped: false });
    expect(g.limit).toBeCloseTo(20.8, 9);
  });

  it('shrinks when the short RTT rises past tolerance, at most to half per sample', () => {
    const g = new Gradient2(100, 20, 200);
    for (let i = 0; i < 10; i++) g.update({ rttMs: 10, inFlight: 100, dropped: false });
    const before = g.limit;
    g.update({ rttMs: 1_000, inFlight: 200, dropped: false });
    // gradient clamps to 0.5: before·0.8 + (before·0.5 + 4)·0.2
    expect(g.limit).toBeCloseTo(Math.min(200, before * 0.8 + (before * 0.5 + 4) * 0.2), 6);
  });

  it('Trellis addition: a drop multiplies by 0.9, never below min', () => {
    const g = new Gradient2(100, 20, 200);
    g.update({ rttMs: 10, inFlight: 100, dropped: true });
    expect(g.limit).toBeCloseTo(90, 9);
    const low = new Gradient2(20, 20, 200);
    low.update({ rttMs: 10, inFlight: 20, dropped: true });
    expect(low.limit).toBe(20);
  });
});

describe('vegas (Netflix VegasLimit)', () => {
  it('grows by beta with no queue and shrinks past beta', () => {
    const v = new Vegas(20, 1, 1000, { random: () => 0.99 });
    v.update({ rttMs: 10, inFlight: 20, dropped: false }); // sets rttNoLoad
    v.update({ rttMs: 10, inFlight: 20, dropped: false }); // queue 0 <= 1: +6
    expect(v.limit).toBe(26);
    v.update({ rttMs: 40, inFlight: 26, dropped: false }); // queue ceil(26·0.75) = 20 > 6: -1
    expect(v.limit).toBe(25);
    v.update({ rttMs: 10, inFlight: 25, dropped: true }); // drop: -1
    expect(v.limit).toBe(24);
  });
});

describe('aimd (Netflix AIMDLimit)', () => {
  it('adds one at high use, multiplies by 0.9 on a drop or a sample over the timeout', () => {
    const a = new Aimd(20, 10, 200);
    a.update({ rttMs: 5, inFlight: 10, dropped: false });
    expect(a.limit).toBe(21);
    a.update({ rttMs: 5, inFlight: 2, dropped: false });
    expect(a.limit).toBe(21);
    a.update({ rttMs: 6_000, inFlight: 21, dropped: false });
    expect(a.limit).toBeCloseTo(18.9, 9);
  });
});

describe('windowed (Netflix WindowedLimit)', () => {
  it('feeds one averaged sample per 1 s window of at least 10 samples', () => {
    const seen: { rttMs: number; inFlight: number; dropped: boolean }[] = [];
    const inner = {
      limit: 20,
      update(s: { rttMs: number; inFlight: number; dropped: boolean }) {
        seen.push(s);
        return 20;
      },
    };
    const w = new Windowed(inner);
    // the first sample opens the first window
    w.update({ rttMs: 5, inFlight: 1, dropped: false, at: 1 });
    expect(seen).toHaveLength(0);
    for (let i = 0; i < 20; i++)
      w.update({ rttMs: i < 10 ? 10 : 30, inFlight: i, dropped: i === 3, at: 100 + i * 10 });
    expect(seen).toHaveLength(0);
    w.update({ rttMs: 20, inFlight: 1, dropped: false, at: 1_002 });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.rttMs).toBeCloseTo((10 * 10 + 10 * 30 + 20) / 21, 9);
    expect(seen[0]?.inFlight).toBe(19);
    expect(seen[0]?.dropped).toBe(true);
    // fewer than 10 samples in the next window: nothing reaches the algorithm
    for (let i = 0; i < 5; i++) w.update({ rttMs: 10, inFlight: 1, dropped: false, at: 1_100 + i });
    w.update({ rttMs: 10, inFlight: 1, dropped: false, at: 2_100 });
    expect(seen).toHaveLength(1);
  });
});
