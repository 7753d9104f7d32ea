import { describe, expect, it } from 'vitest';
import { StaticTarget, Upstream } from './Upstream.js';

const settings = { connections: 4, keepAliveTimeoutMs: 1_000 };

describe('Upstream', () => {
  it('splits a base URL into origin, path prefix, address and port', async () => {
    const cases: [string, string, string, string, number][] = [
      ['http://api:8080', 'http://api:8080', '', 'api', 8080],
      ['http://api:8080/', 'http://api:8080', '', 'api', 8080],
      ['http://api/v1/', 'http://api', '/v1', 'api', 80],
      ['https://api.example.com/a/b', 'https://api.example.com', '/a/b', 'api.example.com', 443],
      ['http://[::1]:9000', 'http://[::1]:9000', '', '::1', 9000],
    ];
    for (const [url, origin, prefix, address, port] of cases) {
      const u = new Upstream('x', url, settings);
      expect({ origin: u.origin, prefix: u.prefix, address: u.address, port: u.port }).toEqual({
        origin,
        prefix,
        address,
        port,
      });
      await u.pool.close();
    }
  });

  it('rejects non-HTTP URLs', () => {
    expect(() => new Upstream('x', 'ftp://files', settings)).toThrow(/unsupported protocol/);
    expect(() => new Upstream('x', 'nope', settings)).toThrow();
  });
});

describe('StaticTarget', () => {
  it('hands out the same lease every time and closes its pool', async () => {
    const target = new StaticTarget('http://127.0.0.1:1/base', settings);
    const lease = target.acquire();
    expect(target.acquire()).toBe(lease);
    expect(lease.pick).toBeUndefined();
    expect(lease.upstream.prefix).toBe('/base');
    await target.close();
    expect(lease.upstream.pool.closed).toBe(true);
  });
});
