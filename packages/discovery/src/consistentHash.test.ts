import type { Instance } from '@trellis/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { consistentHash, hash32, MAX_RING_POINTS, ringCounts } from './consistentHash.js';

const make = (n: number): Instance[] =>
  Array.from({ length: n }, (_, i) => ({ id: `h${i}:80`, url: `http://h${i}:80` }));

describe('consistentHash', () => {
  it('sends the same key to the same instance', () => {
    const b = consistentHash();
    const list = make(5);
    for (let k = 0; k < 50; k++) {
      const first = b.pick(list, { key: `user-${k}` })!;
      first.done({ ok: true, durationMs: 1 });
      const again = b.pick(list, { key: `user-${k}` })!;
      again.done({ ok: true, durationMs: 1 });
      expect(again.instance.id).toBe(first.instance.id);
    }
  });

  it('moves only about 1/n of the keys when an instance is added', () => {
    const b = consistentHash();
    const before = make(10);
    const after = make(11);
    let moved = 0;
    for (let k = 0; k < 2000; k++) {
      const x = b.pick(before, { key: `k${k}` })!;
      x.done({ ok: true, durationMs: 1 });
      const y = b.pick(after, { key: `k${k}` })!;
      y.done({ ok: true, durationMs: 1 });
      if (x.instance.id !== y.instance.id) {
        moved++;
        expect(y.instance.id).toBe('h10:80');
      }
    }
    expect(moved / 2000).toBeGreaterThan(0.03);
    expect(moved / 2000).toBeLessThan(0.2);
  });

  it('bounds the load: a hot key spills over once its instance is above loadFactor x average', () => {
    const b = consistentHash({ loadFactor: 1.25 });
    const list = make(4);
    const held = Array.from({ length: 40 }, () => b.pick(list, { key: 'hot' })!);
    const loads = list.map((i) => b.inflight(i.id));
    expect(Math.max(...loads)).toBeLessThanOrEqual(Math.ceil((1.25 * 40) / 4));
    expect(new Set(held.map((p) => p.instance.id)).size).toBeGreaterThan(1);
  });

  it('hash32 is stable and spreads nearby strings', () => {
    expect(hash32('a')).toBe(hash32('a'));
    expect(hash32('a')).not.toBe(hash32('b'));
  });
});

describe('consistentHash ring size (issue 18 item 7)', () => {
  it('property: the ring is bounded whatever the weights (SRV weights up to 65535) and replicas', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 65_535 }), { minLength: 1, maxLength: 200 }),
        fc.integer({ min: 1, max: 10_000 }),
        (weights, replicas) => {
          const counts = ringCounts(weights, replicas);
          const total = counts.reduce((a, b) => a + b, 0);
          expect(total).toBeLessThanOrEqual(MAX_RING_POINTS + weights.length);
          expect(counts.every((c) => c >= 1)).toBe(true);
          // Heavier instances never get fewer points than lighter ones.
          const clean = weights.map((w) => (w > 0 ? w : 1));
          for (let i = 1; i < clean.length; i++) {
            if (clean[i]! > clean[0]!) expect(counts[i]).toBeGreaterThanOrEqual(counts[0]!);
          }
        },
      ),
      { seed: 1807, numRuns: 300 },
    );
  });

  it('picks among instances of weight 65535 without building a huge ring', () => {
    const b = consistentHash({ replicas: 10_000 });
    const list: Instance[] = Array.from({ length: 20 }, (_, i) => ({
      id: `h${i}:80`,
      url: `http://h${i}:80`,
      weight: i % 2 === 0 ? 65_535 : 1,
    }));
    const seen = new Map<string, number>();
    for (let k = 0; k < 2_000; k++) {
      const p = b.pick(list, { key: `user-${k}` })!;
      seen.set(p.instance.id, (seen.get(p.instance.id) ?? 0) + 1);
      p.done({ ok: true, durationMs: 1 });
    }
    // The heavy instances take nearly every key; a weight-1 instance keeps only its one point.
    const heavy = [...seen].filter(([id]) => Number(id.slice(1, -3)) % 2 === 0);
    expect(heavy.reduce((a, [, n]) => a + n, 0)).toBeGreaterThan(1_900);
  });
});
