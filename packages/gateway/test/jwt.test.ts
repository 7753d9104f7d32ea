/**
 * JWT auth on real sockets with real keys: static keys and a JWKS served by a real HTTP server,
 * key rotation, and the security cases (alg confusion, `alg: none`, expired, nbf, iss/aud).
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  exportJWK,
  exportSPKI,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  SignJWT,
  UnsecuredJWT,
} from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { type EchoBody, type Harness, startHarness } from './edgeHarness.js';

type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

const T0 = Date.UTC(2026, 0, 1) / 1000; // wall clock of the tests, in seconds
let wallSeconds = T0;
const now = () => wallSeconds * 1000;

let rsa: KeyPair;
let rsaPem: string;
let ec: KeyPair;
const secret = 'a-very-long-hmac-secret-of-at-least-32-chars';

async function sign(
  payload: JWTPayload,
  key: KeyPair['privateKey'] | Uint8Array,
  alg: string,
  kid?: string,
): Promise<string> {
  return new SignJWT({ sub: 'alice', ...payload })
    .setProtectedHeader(kid ? { alg, kid } : { alg })
    .setIssuedAt(wallSeconds)
    .setExpirationTime(payload.exp ?? wallSeconds + 300)
    .sign(key);
}

async function get(h: Harness, headers: Record<string, string> = {}) {
  const res = await fetch(`${h.url}/orders/1`, { headers });
  const text = await res.text();
  return { res, text, json: () => JSON.parse(text) as EchoBody };
}

beforeAll(async () => {
  rsa = await generateKeyPair('RS256', { extractable: true });
  rsaPem = await exportSPKI(rsa.publicKey);
  ec = await generateKeyPair('ES256', { extractable: true });
});

describe('JWT with a static RSA public key', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      now,
      global: {
        auth: {
          jwt: {
            main: {
              publicKey: rsaPem,
              algorithms: ['RS256'],
              issuer: 'https://idp.test',
              audience: 'orders',
            },
          },
        },
      },
      route: { auth: { jwt: 'main', scopes: ['orders:read'] } },
    });
  });
  afterAll(() => h.close());
  afterEach(() => {
    wallSeconds = T0;
  });
  const good = (extra: JWTPayload = {}) =>
    sign(
      { iss: 'https://idp.test', aud: 'orders', scope: 'orders:read other', ...extra },
      rsa.privateKey,
      'RS256',
    );

  it('accepts a valid token, forwards the identity and strips Authorization', async () => {
    const { res, json } = await get(h, {
      authorization: `Bearer ${await good()}`,
      'x-trellis-identity': '{"sub":"admin"}',
    });
    expect(res.status).toBe(200);
    const echoed = json();
    expect(echoed.headers.authorization).toBeUndefined();
    expect(JSON.parse(echoed.headers['x-trellis-identity'] ?? '')).toEqual({
      sub: 'alice',
      method: 'jwt',
      scopes: ['orders:read', 'other'],
      iss: 'https://idp.test',
    });
  });

  it('401 with WWW-Authenticate when the token is missing', async () => {
    const { res, text } = await get(h);
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="trellis"');
    expect(JSON.parse(text).code).toBe('TRELLIS_GATEWAY_UNAUTHORIZED');
  });

  it('rejects algorithm confusion: HS256 signed with the RSA public key as the secret', async () => {
    const forged = await sign(
      { iss: 'https://idp.test', aud: 'orders', scope: 'orders:read' },
      new TextEncoder().encode(rsaPem),
      'HS256',
    );
    const { res } = await get(h, { authorization: `Bearer ${forged}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('algorithm not allowed');
  });

  it('rejects alg: none', async () => {
    const unsigned = new UnsecuredJWT({
      sub: 'alice',
      iss: 'https://idp.test',
      aud: 'orders',
      scope: 'orders:read',
    })
      .setExpirationTime(wallSeconds + 300)
      .encode();
    expect(unsigned.endsWith('.')).toBe(true);
    const { res } = await get(h, { authorization: `Bearer ${unsigned}` });
    expect(res.status).toBe(401);
    // and with a made-up signature appended
    const { res: res2 } = await get(h, { authorization: `Bearer ${unsigned}c2ln` });
    expect(res2.status).toBe(401);
  });

  it('rejects a token signed by another key (bad signature)', async () => {
    const other = await generateKeyPair('RS256');
    const token = await sign({ iss: 'https://idp.test', aud: 'orders' }, other.privateKey, 'RS256');
    const { res } = await get(h, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('bad signature');
  });

  it('rejects expired tokens beyond the 30 s clock skew, accepts within it', async () => {
    const token = await good({ exp: T0 + 60 });
    wallSeconds = T0 + 60 + 29;
    expect((await get(h, { authorization: `Bearer ${token}` })).res.status).toBe(200);
    wallSeconds = T0 + 60 + 31;
    const { res } = await get(h, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('token expired');
  });

  it('rejects tokens before nbf (minus skew)', async () => {
    const token = await good({ nbf: T0 + 100 });
    wallSeconds = T0 + 50;
    const { res } = await get(h, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('not yet valid');
    wallSeconds = T0 + 75;
    expect((await get(h, { authorization: `Bearer ${token}` })).res.status).toBe(200);
  });

  it('rejects a token without exp, a wrong issuer and a wrong audience', async () => {
    const noExp = await new SignJWT({
      sub: 'alice',
      iss: 'https://idp.test',
      aud: 'orders',
      scope: 'orders:read',
    })
      .setProtectedHeader({ alg: 'RS256' })
      .sign(rsa.privateKey);
    expect((await get(h, { authorization: `Bearer ${noExp}` })).res.status).toBe(401);
    const wrongIss = await good({ iss: 'https://evil.test' });
    expect((await get(h, { authorization: `Bearer ${wrongIss}` })).res.status).toBe(401);
    const wrongAud = await good({ aud: 'billing' });
    expect((await get(h, { authorization: `Bearer ${wrongAud}` })).res.status).toBe(401);
  });

  it('403 with insufficient_scope when a required scope is missing', async () => {
    const token = await good({ scope: 'orders:write' });
    const { res, text } = await get(h, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(JSON.parse(text).detail).toContain('scope orders:read');
  });

  it('401 for garbage and for a non-Bearer scheme', async () => {
    expect((await get(h, { authorization: 'Bearer not.a.jwt' })).res.status).toBe(401);
    expect((await get(h, { authorization: 'Basic YWxpY2U6cHc=' })).res.status).toBe(401);
  });
});

describe('JWT with HS256 secret, ES256 JWK, claims and forwarding', () => {
  it('HS256: accepts its tokens, rejects RS256 tokens; forwards Authorization when configured', async () => {
    const h = await startHarness({
      now,
      global: {
        auth: {
          jwt: { hs: { secret, algorithms: ['HS256'] } },
          identityHeader: { name: 'x-user', format: 'subject' },
        },
      },
      route: { auth: { jwt: 'hs', forwardCredentials: true, claims: { role: ['admin', 'ops'] } } },
    });
    try {
      const key = new TextEncoder().encode(secret);
      const token = await sign({ role: 'ops' }, key, 'HS256');
      const ok = await get(h, { authorization: `Bearer ${token}`, 'x-user': 'mallory' });
      expect(ok.res.status).toBe(200);
      expect(ok.json().headers['x-user']).toBe('alice');
      expect(ok.json().headers.authorization).toBe(`Bearer ${token}`);
      const rs = await sign({ role: 'ops' }, rsa.privateKey, 'RS256');
      expect((await get(h, { authorization: `Bearer ${rs}` })).res.status).toBe(401);
      const wrongRole = await sign({ role: 'guest' }, key, 'HS256');
      const denied = await get(h, { authorization: `Bearer ${wrongRole}` });
      expect(denied.res.status).toBe(403);
      expect(denied.text).toContain('claim role');
    } finally {
      await h.close();
    }
  });

  it('ES256 with a public JWK', async () => {
    const jwk = await exportJWK(ec.publicKey);
    const h = await startHarness({
      now,
      global: { auth: { jwt: { ec: { jwk, algorithms: ['ES256'] } } } },
      route: { auth: { jwt: 'ec' } },
    });
    try {
      const token = await sign({}, ec.privateKey, 'ES256');
      expect((await get(h, { authorization: `Bearer ${token}` })).res.status).toBe(200);
      const rsToken = await sign({}, rsa.privateKey, 'RS256');
      expect((await get(h, { authorization: `Bearer ${rsToken}` })).res.status).toBe(401);
    } finally {
      await h.close();
    }
  });
});

describe('JWT with a JWKS URL', () => {
  let jwksServer: Server;
  let jwksUrl: string;
  let keys: JWK[] = [];
  let hits = 0;
  let failing = false;

  beforeAll(async () => {
    jwksServer = createServer((_req, res) => {
      hits++;
      if (failing) {
        res.writeHead(500).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ keys }));
    });
    jwksServer.listen(0, '127.0.0.1');
    await once(jwksServer, 'listening');
    jwksUrl = `http://127.0.0.1:${(jwksServer.address() as AddressInfo).port}/jwks.json`;
  });
  afterAll(async () => {
    jwksServer.closeAllConnections();
    jwksServer.close();
  });

  async function jwkOf(pair: KeyPair, kid: string, alg: string): Promise<JWK> {
    return { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' };
  }

  it('caches keys, refetches on an unknown kid (rotation) at most once per cooldown', async () => {
    failing = false;
    hits = 0;
    const k1 = await generateKeyPair('RS256', { extractable: true });
    const k2 = await generateKeyPair('ES256', { extractable: true });
    keys = [await jwkOf(k1, 'k1', 'RS256')];
    const h = await startHarness({
      now,
      global: {
        auth: {
          jwt: {
            idp: {
              jwksUrl,
              algorithms: ['RS256', 'ES256'],
              jwks: { cooldownMs: 10_000, cacheMaxAgeMs: 60_000 },
            },
          },
        },
      },
      route: { auth: { jwt: 'idp' } },
    });
    try {
      const t1 = await sign({}, k1.privateKey, 'RS256', 'k1');
      expect((await get(h, { authorization: `Bearer ${t1}` })).res.status).toBe(200);
      expect((await get(h, { authorization: `Bearer ${t1}` })).res.status).toBe(200);
      expect(hits).toBe(1); // cached

      // The issuer rotates to k2; a token with kid k2 arrives before the cooldown is over.
      keys = [await jwkOf(k1, 'k1', 'RS256'), await jwkOf(k2, 'k2', 'ES256')];
      const t2 = await sign({}, k2.privateKey, 'ES256', 'k2');
      const early = await get(h, { authorization: `Bearer ${t2}` });
      expect(early.res.status).toBe(401);
      expect(early.res.headers.get('www-authenticate')).toContain('unknown signing key');
      expect(hits).toBe(1); // rate-limited: no refetch yet

      await h.clock.advance(10_000);
      expect((await get(h, { authorization: `Bearer ${t2}` })).res.status).toBe(200);
      expect(hits).toBe(2);

      // An attacker spraying unknown kids triggers at most one fetch per cooldown.
      const other = await generateKeyPair('RS256');
      for (let i = 0; i < 5; i++) {
        const bogus = await sign({}, other.privateKey, 'RS256', `bogus-${i}`);
        expect((await get(h, { authorization: `Bearer ${bogus}` })).res.status).toBe(401);
      }
      expect(hits).toBe(2);

      // k1 retired: after the cache max age the set is refetched and k1 tokens fail.
      keys = [await jwkOf(k2, 'k2', 'ES256')];
      await h.clock.advance(60_000);
      expect((await get(h, { authorization: `Bearer ${t1}` })).res.status).toBe(401);
      expect(hits).toBe(3);
    } finally {
      await h.close();
    }
  });

  it('close() releases the JWKS keep-alive connection and stops fetching', async () => {
    failing = false;
    const k1 = await generateKeyPair('RS256', { extractable: true });
    keys = [await jwkOf(k1, 'k1', 'RS256')];
    const { JwtProvider } = await import('../src/stages/auth/jwtProvider.js');
    const { createTestClock } = await import('@trellis/core/testing');
    const { silentLogger } = await import('@trellis/core');
    const { jwtProviderSchema } = await import('../src/stages/auth/jwtProvider.js');
    const clock = createTestClock();
    const provider = new JwtProvider(jwtProviderSchema.parse({ jwksUrl, algorithms: ['RS256'] }), {
      clock,
      logger: silentLogger,
      now,
    });
    const connections = () =>
      new Promise<number>((done) => jwksServer.getConnections((_e, n) => done(n)));
    const t1 = await sign({}, k1.privateKey, 'RS256', 'k1');
    await expect(provider.verify(t1)).resolves.toMatchObject({ payload: { sub: 'alice' } });
    expect(await connections()).toBe(1); // undici keeps the connection alive
    await provider.close();
    await vi.waitFor(async () => expect(await connections()).toBe(0));
    // After close, neither an unknown kid nor an expired cache triggers a fetch.
    const fetchesBefore = provider.jwks?.fetches;
    await clock.advance(3_600_000);
    const bogus = await sign({}, k1.privateKey, 'RS256', 'rotated');
    await expect(provider.verify(bogus)).rejects.toThrow();
    expect(provider.jwks?.fetches).toBe(fetchesBefore);
    expect(await connections()).toBe(0);
  });

  it('ignores symmetric keys in a JWKS (no HS256 via an oct key)', async () => {
    failing = false;
    keys = [{ kty: 'oct', k: Buffer.from(secret).toString('base64url'), kid: 'sym', alg: 'HS256' }];
    const h = await startHarness({
      now,
      global: { auth: { jwt: { idp: { jwksUrl, algorithms: ['RS256'] } } } },
      route: { auth: { jwt: 'idp' } },
    });
    try {
      const token = await sign({}, new TextEncoder().encode(secret), 'HS256', 'sym');
      expect((await get(h, { authorization: `Bearer ${token}` })).res.status).toBe(401);
    } finally {
      await h.close();
    }
  });

  it('503 with Retry-After when the JWKS cannot be fetched and nothing is cached; keeps a stale set', async () => {
    failing = true;
    hits = 0;
    const k1 = await generateKeyPair('RS256', { extractable: true });
    const h = await startHarness({
      now,
      global: {
        auth: {
          jwt: {
            idp: {
              jwksUrl,
              algorithms: ['RS256'],
              jwks: { cooldownMs: 1_000, cacheMaxAgeMs: 5_000 },
            },
          },
        },
      },
      route: { auth: { jwt: 'idp' } },
    });
    try {
      const t1 = await sign({}, k1.privateKey, 'RS256', 'k1');
      const down = await get(h, { authorization: `Bearer ${t1}` });
      expect(down.res.status).toBe(503);
      expect(down.res.headers.get('retry-after')).toBe('5');
      expect(JSON.parse(down.text).code).toBe('TRELLIS_GATEWAY_AUTH_UNAVAILABLE');

      failing = false;
      keys = [await jwkOf(k1, 'k1', 'RS256')];
      await h.clock.advance(1_000);
      expect((await get(h, { authorization: `Bearer ${t1}` })).res.status).toBe(200);

      failing = true;
      await h.clock.advance(5_000); // stale: a refetch is attempted and fails
      const hitsBefore = hits;
      expect((await get(h, { authorization: `Bearer ${t1}` })).res.status).toBe(200);
      expect(hits).toBe(hitsBefore + 1);
    } finally {
      await h.close();
    }
  });
});
