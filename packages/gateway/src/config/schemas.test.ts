/** Config validation of the edge schemas: bad input names the field. */
import { ConfigError, parseOptions, silentLogger, systemClock } from '@trellis/core';
import { exportSPKI, generateKeyPair } from 'jose';
import { describe, expect, it } from 'vitest';
import { createEdge, edgeGlobalSchema, edgeRouteSchema } from '../stages/createStages.js';

function issuesOf(schema: typeof edgeGlobalSchema | typeof edgeRouteSchema, input: unknown) {
  try {
    parseOptions(schema, input, 'gateway');
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as ConfigError).issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('edgeGlobalSchema', () => {
  it('has working defaults', () => {
    const c = edgeGlobalSchema.parse({});
    expect(c.auth.identityHeader).toEqual({
      name: 'x-trellis-identity',
      format: 'json',
      includeClaims: false,
    });
    expect(c.accessLog.enabled).toBe(true);
    expect(c.redis).toBeUndefined();
  });

  it('pins algorithms to the key type (prevents algorithm confusion by config)', async () => {
    const { publicKey } = await generateKeyPair('RS256', { extractable: true });
    const pem = await exportSPKI(publicKey);
    expect(
      issuesOf(edgeGlobalSchema, {
        auth: { jwt: { a: { publicKey: pem, algorithms: ['HS256'] } } },
      }),
    ).toEqual([expect.stringMatching(/^auth\.jwt\.a\.algorithms: HS256 needs a secret/)]);
    expect(
      issuesOf(edgeGlobalSchema, {
        auth: { jwt: { a: { secret: 'x'.repeat(40), algorithms: ['HS256', 'RS256'] } } },
      }),
    ).toEqual(['auth.jwt.a.algorithms: a secret can only verify HS256']);
    expect(
      issuesOf(edgeGlobalSchema, {
        auth: { jwt: { a: { algorithms: ['none'], secret: 'x'.repeat(40) } } },
      })[0],
    ).toMatch(/^auth\.jwt\.a\.algorithms\[0\]/);
  });

  it('names bad keys, short secrets, missing sources, bad URLs', () => {
    expect(
      issuesOf(edgeGlobalSchema, {
        auth: { jwt: { a: { publicKey: 'nope', algorithms: ['RS256'] } } },
      })[0],
    ).toMatch(/^auth\.jwt\.a\.publicKey: not a PEM public key/);
    expect(
      issuesOf(edgeGlobalSchema, {
        auth: { jwt: { a: { secret: 'short', algorithms: ['HS256'] } } },
      })[0],
    ).toMatch(/^auth\.jwt\.a\.secret: HS256 secrets must be at least 32/);
    expect(issuesOf(edgeGlobalSchema, { auth: { jwt: { a: { algorithms: ['RS256'] } } } })).toEqual(
      ['auth.jwt.a.secret: give exactly one of secret, publicKey, jwk, jwksUrl'],
    );
    expect(
      issuesOf(edgeGlobalSchema, {
        auth: { jwt: { a: { jwksUrl: 'ftp://x', algorithms: ['RS256'] } } },
      })[0],
    ).toMatch(/^auth\.jwt\.a\.jwksUrl/);
    expect(issuesOf(edgeGlobalSchema, { redis: { url: 'http://x' } })[0]).toMatch(
      /^redis\.url: must be a redis/,
    );
  });
});

describe('edgeRouteSchema', () => {
  it('names bad CORS, auth, rate limit and header settings', () => {
    expect(issuesOf(edgeRouteSchema, { cors: { origins: ['*'], credentials: true } })).toEqual([
      "cors.credentials: origins '*' cannot be combined with credentials: true (browsers reject it)",
    ]);
    expect(issuesOf(edgeRouteSchema, { cors: { origins: ['https://a.test/path'] } })[0]).toMatch(
      /^cors\.origins\[0\]/,
    );
    expect(issuesOf(edgeRouteSchema, { cors: { originPatterns: ['('] } })[0]).toMatch(
      /^cors\.originPatterns\[0\]: not a valid/,
    );
    expect(issuesOf(edgeRouteSchema, { auth: {} })).toEqual([
      'auth.jwt: set jwt (a provider name) and/or apiKey: true',
    ]);
    expect(issuesOf(edgeRouteSchema, { rateLimit: { limit: 0, windowMs: 1000 } })[0]).toMatch(
      /^rateLimit\.limit/,
    );
    expect(
      issuesOf(edgeRouteSchema, {
        rateLimit: { limit: 1, windowMs: 1000, key: { header: 'bad header' } },
      })[0],
    ).toMatch(/^rateLimit\.key/);
    expect(
      issuesOf(edgeRouteSchema, { headers: { request: { set: { 'x-a': 'a\r\nx-b: b' } } } })[0],
    ).toMatch(/^headers\.request\.set\.x-a: header values must not contain CR, LF/);
  });
});

describe('createEdge', () => {
  it('rejects a route naming an unknown JWT provider, or redis without redis.url', async () => {
    const edge = createEdge(edgeGlobalSchema.parse({}), {
      clock: systemClock,
      logger: silentLogger,
    });
    expect(() =>
      edge.forRoute({ id: 'orders', ...edgeRouteSchema.parse({ auth: { jwt: 'idp' } }) }),
    ).toThrow(/routes\.orders\.auth\.jwt: unknown JWT provider "idp"/);
    expect(() =>
      edge.forRoute({ id: 'orders', ...edgeRouteSchema.parse({ auth: { apiKey: true } }) }),
    ).toThrow(/routes\.orders\.auth\.apiKey/);
    expect(() =>
      edge.forRoute({
        id: 'o',
        ...edgeRouteSchema.parse({ rateLimit: { limit: 1, windowMs: 1, store: 'redis' } }),
      }),
    ).toThrow(/routes\.o\.rateLimit\.store/);
    await edge.close();
    await edge.close(); // idempotent
  });

  it('a route without edge settings gets an empty chain; the identity header is for the core', () => {
    const edge = createEdge(edgeGlobalSchema.parse({ auth: { apiKeys: { keys: {} } } }), {
      clock: systemClock,
      logger: silentLogger,
    });
    expect(edge.forRoute({ id: 'a', ...edgeRouteSchema.parse({}) })).toHaveLength(0);
    expect(edge.identityHeader).toBe('x-trellis-identity');
    expect(edge.accessLog).toBeTypeOf('function');
    expect(
      edge.forRoute({
        id: 'b',
        ...edgeRouteSchema.parse({ cors: { origins: ['*'] }, auth: { apiKey: true }, headers: {} }),
      }),
    ).toHaveLength(3);
  });
});
