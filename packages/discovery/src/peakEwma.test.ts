import type { Instance } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { describe, expect, it } from 'vitest';
import { peakEwma } from './peakEwma.js';

const list: Instance[] = Array.from({ length: 4 }, (_, i) => ({
  id: `h${i}:80`,
  url: `http://h${i}:80`,
}));

function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

describe('peakEwma', () => {
  it('probes a never-measured instance at once, one request at a time', () => {
    const b = peakEwma({ random: seeded(3) });
    const two = list.slice(0, 2);
    const first = b.pick(two)!;
    first.done({ ok: true, durationMs: 10 });
    const other = first.instance.id === 'h0:80' ? 'h1:80' : 'h0:80';
    const probe = b.pick(two)!;
    expect(probe.instance.id).toBe(other);
    // While its first request is outstanding it is not flooded.
    expect(b.pick(two)!.instance.id).toBe(first.instance.id);
  });

  it('avoids an instance right after one slow response', () => {
    const clock = createTestClock();
    const b = peakEwma({ clock, random: seeded(5) });
    for (let i = 0; i < 40; i++) {
      const p = b.pick(list)!;
      p.done({ ok: true, durationMs: p.instance.id === 'h0:80' ? 2_000 : 10 });
    }
    let slow = 0;
    for (let i = 0; i < 1000; i++) {
      const p = b.pick(list)!;
      if (p.instance.id === 'h0:80') slow++;
      p.done({ ok: true, durationMs: p.instance.id === 'h0:80' ? 2_000 : 10 });
    }
    expect(slow).toBe(0);
  });

  it('lets a slow instance back in after its latency estimate decays', async () => {
    const clock = createTestClock();
    const b = peakEwma({ clock, decayMs: 1_000, random: seeded(11) });
    for (let i = 0; i < 40; i++) {
      const p = b.pick(list)!;
      p.done({ ok: true, durationMs: p.instance.id === 'h0:80' ? 2_000 : 10 });
    }
    // The others keep answering in 10 ms; h0's 2 s peak decays (e^(-t/1 s)) until it is cheaper.
    let firstBack = -1;
    for (let i = 0; i < 200 && firstBack === -1; i++) {
      await clock.advance(100);
      const p = b.pick(list)!;
      if (p.instance.id === 'h0:80') firstBack = clock.now();
      p.done({ ok: true, durationMs: 10 });
    }
    expect(firstBack).toBeGreaterThan(2_000);
    expect(firstBack).toBeLessThan(20_000);
  });

  it('treats a fast failure as slow (failurePenaltyMs)', () => {
    const clock = createTestClock();
    const b = peakEwma({ clock, outlier: false, random: seeded(9) });
    for (let i = 0; i < 40; i++) {
      const p = b.pick(list)!;
      const bad = p.instance.id === 'h0:80';
      p.done({ ok: !bad, durationMs: bad ? 0.1 : 10 });
    }
    let bad = 0;
    for (let i = 0; i < 500; i++) {
      const p = b.pick(list)!;
      if (p.instance.id === 'h0:80') bad++;
      p.done({ ok: p.instance.id !== 'h0:80', durationMs: 10 });
    }
    expect(bad).toBe(0);
  });
});
