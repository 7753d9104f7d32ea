/**
 * API keys on real sockets: stored as SHA-256 digests, compared with `crypto.timingSafeEqual` over
 * equal-length digests against every stored key (constant time by construction; no wall-clock
 * assertions).
 */
import * as crypto from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApiKeyStore, hashApiKey } from '../src/stages/auth/apiKeys.js';
import { type EchoBody, type Harness, startHarness } from './edgeHarness.js';

vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});
const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);

const keys = {
  billing: { sha256: hashApiKey('billing-secret-key-1'), scopes: ['invoices:read'] },
  reports: { sha256: hashApiKey('reports-secret-key-2') },
  ops: { sha256: hashApiKey('ops-secret-key-3'), scopes: ['invoices:read', 'admin'] },
};

describe('ApiKeyStore', () => {
  const store = new ApiKeyStore({
    header: 'x-api-key',
    keys: {
      billing: { sha256: keys.billing.sha256, scopes: ['invoices:read'] },
      reports: { sha256: keys.reports.sha256, scopes: [] },
      ops: { sha256: keys.ops.sha256, scopes: [] },
    },
  });
  beforeEach(() => {
    timingSafeEqual.mockClear();
  });

  it('finds a key by its plaintext and never stores the plaintext', () => {
    expect(store.match('billing-secret-key-1')).toEqual({
      name: 'billing',
      scopes: ['invoices:read'],
    });
    expect(store.match('nope')).toBeUndefined();
    expect(JSON.stringify(store)).not.toContain('billing-secret-key-1');
  });

  it('compares 32-byte digests with timingSafeEqual against every key, whichever matches', () => {
    for (const presented of [
      'billing-secret-key-1',
      'ops-secret-key-3',
      'x',
      'a'.repeat(10_000),
      '',
    ]) {
      timingSafeEqual.mockClear();
      store.match(presented);
      // One comparison per stored key: no early exit on a match or a mismatch.
      expect(timingSafeEqual).toHaveBeenCalledTimes(3);
      for (const [a, b] of timingSafeEqual.mock.calls) {
        expect((a as Buffer).length).toBe(32);
        expect((b as Buffer).length).toBe(32);
      }
    }
  });

  it('hashApiKey is the hex SHA-256 of the key', () => {
    expect(hashApiKey('abc')).toBe(
      'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad',
    );
  });
});

describe('API key auth on a route', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      global: { auth: { apiKeys: { keys } } },
      route: { auth: { apiKey: true, scopes: ['invoices:read'] } },
    });
  });
  afterAll(() => h.close());

  const get = async (headers: Record<string, string>) => {
    const res = await fetch(`${h.url}/invoices`, { headers });
    const text = await res.text();
    return { res, text };
  };

  it('accepts a known key: identity is the key name, the key itself is not forwarded', async () => {
    const { res, text } = await get({
      'x-api-key': 'billing-secret-key-1',
      'x-trellis-identity': 'spoofed',
    });
    expect(res.status).toBe(200);
    const echoed = JSON.parse(text) as EchoBody;
    expect(echoed.headers['x-api-key']).toBeUndefined();
    expect(JSON.parse(echoed.headers['x-trellis-identity'] ?? '')).toEqual({
      sub: 'billing',
      method: 'apiKey',
      scopes: ['invoices:read'],
    });
  });

  it('401 with an ApiKey challenge for a missing or unknown key', async () => {
    const missing = await get({});
    expect(missing.res.status).toBe(401);
    expect(missing.res.headers.get('www-authenticate')).toBe(
      'ApiKey realm="trellis", header="x-api-key"',
    );
    const unknown = await get({ 'x-api-key': 'billing-secret-key-2' });
    expect(unknown.res.status).toBe(401);
    expect(JSON.parse(unknown.text).detail).toBe('unknown API key');
  });

  it('403 when the key lacks the route scope', async () => {
    const { res, text } = await get({ 'x-api-key': 'reports-secret-key-2' });
    expect(res.status).toBe(403);
    expect(JSON.parse(text).code).toBe('TRELLIS_GATEWAY_FORBIDDEN');
  });

  it('the plaintext digest in config is validated', async () => {
    const { edgeGlobalSchema } = await import('../src/stages/createStages.js');
    const r = edgeGlobalSchema.safeParse({
      auth: { apiKeys: { keys: { a: { sha256: 'plaintext' } } } },
    });
    expect(r.success).toBe(false);
    expect(r.error?.issues[0]?.path).toEqual(['auth', 'apiKeys', 'keys', 'a', 'sha256']);
  });
});
