import { ConfigError, type Instance, ShutdownError } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { staticDiscovery } from './staticDiscovery.js';

describe('staticDiscovery', () => {
  it('resolves URLs to host:port instances', async () => {
    const d = staticDiscovery({
      services: {
        users: ['http://127.0.0.1:3001', 'https://api.example.com', 'http://[::1]:8080/base'],
      },
    });
    expect(await d.resolve('users')).toEqual([
      { id: '127.0.0.1:3001', url: 'http://127.0.0.1:3001' },
      { id: 'api.example.com:443', url: 'https://api.example.com' },
      { id: '[::1]:8080', url: 'http://[::1]:8080/base' },
    ]);
    expect(await d.resolve('unknown')).toEqual([]);
    await d.close();
  });

  it('returns the same array while nothing changes (balancers cache by identity)', async () => {
    const d = staticDiscovery({ services: { a: ['http://a:1'] } });
    expect(await d.resolve('a')).toBe(await d.resolve('a'));
    await d.close();
  });

  it('set() updates resolve and notifies watchers; watch delivers the current list first', async () => {
    const d = staticDiscovery({ services: { a: ['http://a:1'] } });
    await d.resolve('a');
    const seen: string[][] = [];
    const off = d.watch('a', (list: Instance[]) => seen.push(list.map((i) => i.id)));
    await Promise.resolve();
    d.set('a', ['http://b:2', { id: 'c', url: 'http://c:3', weight: 2 }]);
    d.set('a', ['http://b:2', { id: 'c', url: 'http://c:3', weight: 2 }]); // no change, no event
    d.delete('a');
    expect(seen).toEqual([['a:1'], ['b:2', 'c'], []]);
    off();
    d.set('a', ['http://z:1']);
    expect(seen).toHaveLength(3);
    await d.close();
  });

  it('does not deliver the current list to a watcher that unsubscribed at once', async () => {
    const d = staticDiscovery({ services: { a: ['http://a:1'] } });
    await d.resolve('a');
    const kept: number[] = [];
    const dropped: number[] = [];
    d.watch('a', (l) => kept.push(l.length));
    d.watch('a', (l) => dropped.push(l.length))();
    await Promise.resolve();
    expect(kept).toEqual([1]);
    expect(dropped).toEqual([]);
    await d.close();
  });

  it('rejects bad URLs with a ConfigError naming the field', () => {
    expect(() => staticDiscovery({ services: { a: ['ftp://x'] } })).toThrow(ConfigError);
    expect(() => staticDiscovery({ services: { a: ['nope'] } })).toThrow(/services\.a\[0\]/);
    const d = staticDiscovery();
    expect(() => d.set('a', ['::'])).toThrow(/\[0\]/);
  });

  it('rejects calls after close()', async () => {
    const d = staticDiscovery({ services: { a: ['http://a:1'] } });
    await d.close();
    await expect(d.resolve('a')).rejects.toBeInstanceOf(ShutdownError);
  });
});
