import { describe, expect, it } from 'vitest';
import type { Balancer, Instance, Resolver } from '../discovery.js';
import { NoInstanceError } from '../errors.js';
import { silentLogger } from '../Logger.js';
import { roundRobinBalancer, ServiceTarget } from './ServiceTarget.js';
import type { Lease } from './Upstream.js';

const settings = { connections: undefined, keepAliveTimeoutMs: 4_000 };

/** A resolver driven by the test: `set()` notifies watchers. No sockets are opened here. */
function testResolver(initial: Instance[]) {
  let current = initial;
  const listeners = new Set<(i: Instance[]) => void>();
  const resolver: Resolver = {
    resolve: async () => current,
    watch: (_s, fn) => {
      listeners.add(fn);
      return () => listeners.delete(fn);
    },
    close: async () => {},
  };
  return {
    resolver,
    listeners,
    set(next: Instance[]) {
      current = next;
      for (const l of listeners) l(next);
    },
  };
}

const a: Instance = { id: 'a', url: 'http://10.0.0.1:8080' };
const b: Instance = { id: 'b', url: 'http://10.0.0.2:8080/api/' };

describe('roundRobinBalancer', () => {
  it('cycles through instances and skips excluded ones while others remain', () => {
    const rr = roundRobinBalancer();
    const ids = (n: number, exclude?: Set<string>) =>
      Array.from(
        { length: n },
        () => rr.pick([a, b], exclude ? { exclude } : undefined)?.instance.id,
      );
    expect(ids(4)).toEqual(['a', 'b', 'a', 'b']);
    expect(ids(3, new Set(['a']))).toEqual(['b', 'b', 'b']);
    // Everything excluded: the exclusion is ignored rather than failing the call.
    expect(ids(2, new Set(['a', 'b'])).every((id) => id === 'a' || id === 'b')).toBe(true);
    expect(rr.pick([])).toBeUndefined();
  });
});

describe('ServiceTarget', () => {
  it('resolves on first acquire and builds one upstream per instance', async () => {
    const { resolver } = testResolver([a, b]);
    const target = new ServiceTarget(
      'items',
      resolver,
      roundRobinBalancer(),
      settings,
      silentLogger,
    );
    const first = (await target.acquire(undefined)) as Lease;
    const second = target.acquire(undefined) as Lease;
    expect(first.upstream.origin).toBe('http://10.0.0.1:8080');
    expect(second.upstream.origin).toBe('http://10.0.0.2:8080');
    expect(second.upstream.prefix).toBe('/api');
    expect(second.upstream.address).toBe('10.0.0.2');
    expect(second.upstream.port).toBe(8080);
    await target.close();
  });

  it('keeps the pools of unchanged instances and closes those that left or moved', async () => {
    const { resolver, set, listeners } = testResolver([a, b]);
    const target = new ServiceTarget(
      'items',
      resolver,
      roundRobinBalancer(),
      settings,
      silentLogger,
    );
    set([a, b]);
    const poolA = (target.acquire(undefined) as Lease).upstream.pool;
    const poolB = (target.acquire(undefined) as Lease).upstream.pool;
    set([a, { id: 'b', url: 'http://10.0.0.3:8080' }]);
    expect((target.acquire(undefined) as Lease).upstream.pool).toBe(poolA);
    expect(poolB.closed).toBe(true);
    const movedB = (target.acquire(undefined) as Lease).upstream;
    expect(movedB.origin).toBe('http://10.0.0.3:8080');
    set([]);
    expect(poolA.closed).toBe(true);
    expect(() => target.acquire(undefined)).toThrow(NoInstanceError);
    await target.close();
    expect(movedB.pool.closed).toBe(true);
    expect(listeners.size).toBe(0);
  });

  it('ignores instances with unusable URLs and duplicate ids', async () => {
    const { resolver, set } = testResolver([]);
    const target = new ServiceTarget(
      'items',
      resolver,
      roundRobinBalancer(),
      settings,
      silentLogger,
    );
    set([
      a,
      { id: 'a', url: 'http://other:1' },
      { id: 'x', url: 'not a url' },
      { id: 'y', url: 'ftp://h/' },
    ]);
    expect(target.instances.map((i) => i.id)).toEqual(['a']);
    await target.close();
  });

  it('reports a pick it cannot serve and throws NoInstanceError', async () => {
    const outcomes: boolean[] = [];
    const stranger: Instance = { id: 'z', url: 'http://10.0.0.9:1' };
    const balancer: Balancer = {
      pick: () => ({ instance: stranger, done: (o) => outcomes.push(o.ok) }),
    };
    const { resolver } = testResolver([a]);
    const target = new ServiceTarget('items', resolver, balancer, settings, silentLogger);
    await expect(target.acquire(undefined)).rejects.toBeInstanceOf(NoInstanceError);
    expect(outcomes).toEqual([false]);
    await target.close();
  });
});
