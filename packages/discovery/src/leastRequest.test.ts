import type { Instance } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { leastRequest } from './leastRequest.js';

describe('leastRequest', () => {
  it('sends new requests to the instance with fewer in flight', () => {
    const b = leastRequest();
    const list: Instance[] = [
      { id: 'a:80', url: 'http://a:80' },
      { id: 'b:80', url: 'http://b:80' },
    ];
    // Hold 10 requests on whichever instance is picked first; with two instances both are
    // always drawn, so the other one must win every following pick until they are level.
    const held = b.pick(list)!;
    const busy = held.instance.id;
    for (let i = 0; i < 9; i++) {
      const p = b.pick(list)!;
      if (p.instance.id !== busy) p.done({ ok: true, durationMs: 1 });
    }
    expect(b.inflight(busy)).toBe(1);
    const other = busy === 'a:80' ? 'b:80' : 'a:80';
    const p = b.pick(list)!;
    expect(p.instance.id).toBe(other);
  });

  it('balances in-flight load across many instances', () => {
    const b = leastRequest();
    const list: Instance[] = Array.from({ length: 10 }, (_, i) => ({
      id: `h${i}:80`,
      url: `http://h${i}:80`,
    }));
    for (let i = 0; i < 1000; i++) b.pick(list);
    const loads = list.map((i) => b.inflight(i.id));
    expect(Math.max(...loads) - Math.min(...loads)).toBeLessThanOrEqual(6);
  });
});
