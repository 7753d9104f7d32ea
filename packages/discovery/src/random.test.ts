import type { Instance } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { random } from './random.js';

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('random', () => {
  it('spreads picks roughly evenly', () => {
    const b = random({ random: seeded(1) });
    const list: Instance[] = [
      { id: 'a:80', url: 'http://a:80' },
      { id: 'b:80', url: 'http://b:80' },
    ];
    const counts = new Map<string, number>();
    for (let i = 0; i < 10_000; i++) {
      const p = b.pick(list)!;
      counts.set(p.instance.id, (counts.get(p.instance.id) ?? 0) + 1);
      p.done({ ok: true, durationMs: 1 });
    }
    expect(counts.get('a:80')).toBeGreaterThan(4_500);
    expect(counts.get('b:80')).toBeGreaterThan(4_500);
  });

  it('follows weights', () => {
    const b = random({ random: seeded(7) });
    const list: Instance[] = [
      { id: 'a:80', url: 'http://a:80', weight: 3 },
      { id: 'b:80', url: 'http://b:80', weight: 1 },
    ];
    let a = 0;
    for (let i = 0; i < 10_000; i++) if (b.pick(list)!.instance.id === 'a:80') a++;
    expect(a / 10_000).toBeGreaterThan(0.72);
    expect(a / 10_000).toBeLessThan(0.78);
  });
});
