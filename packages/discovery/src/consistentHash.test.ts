import type { Instance } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { consistentHash, hash32 } from './consistentHash.js';

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
