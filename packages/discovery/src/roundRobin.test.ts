import type { Instance } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { roundRobin } from './roundRobin.js';

const list: Instance[] = [
  { id: 'a:80', url: 'http://a:80' },
  { id: 'b:80', url: 'http://b:80' },
  { id: 'c:80', url: 'http://c:80' },
];

describe('roundRobin', () => {
  it('cycles through the instances in order', () => {
    const b = roundRobin();
    const ids = Array.from({ length: 6 }, () => {
      const p = b.pick(list)!;
      p.done({ ok: true, durationMs: 1 });
      return p.instance.id;
    });
    expect(ids).toEqual(['a:80', 'b:80', 'c:80', 'a:80', 'b:80', 'c:80']);
  });

  it('interleaves by weight (smooth weighted round robin)', () => {
    const b = roundRobin();
    const weighted: Instance[] = [
      { id: 'a:80', url: 'http://a:80', weight: 5 },
      { id: 'b:80', url: 'http://b:80', weight: 1 },
      { id: 'c:80', url: 'http://c:80', weight: 1 },
    ];
    const ids = Array.from({ length: 7 }, () => b.pick(weighted)!.instance.id);
    expect(ids).toEqual(['a:80', 'a:80', 'b:80', 'a:80', 'c:80', 'a:80', 'a:80']);
  });

  it('reuses the pick object per instance (no allocation per request)', () => {
    const b = roundRobin();
    const first = b.pick(list)!;
    first.done({ ok: true, durationMs: 1 });
    b.pick(list)!.done({ ok: true, durationMs: 1 });
    b.pick(list)!.done({ ok: true, durationMs: 1 });
    expect(b.pick(list)).toBe(first);
  });
});
