/** CORS at the gateway, on real sockets: preflights answered here, actual requests decorated. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Harness, startHarness } from './edgeHarness.js';

describe('CORS', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      route: {
        cors: {
          origins: ['https://app.example.com'],
          originPatterns: ['https://[a-z0-9-]+\\.preview\\.example\\.com'],
          methods: ['GET', 'POST'],
          allowHeaders: ['content-type', 'authorization'],
          exposeHeaders: ['x-request-id'],
          credentials: true,
          maxAgeSec: 120,
        },
        auth: { apiKey: true },
      },
      global: { auth: { apiKeys: { keys: {} } } },
      // The upstream sets its own CORS headers; the gateway's answer replaces them.
      upstreamHeaders: { 'access-control-allow-origin': '*', vary: 'Accept-Encoding' },
    });
  });
  afterAll(() => h.close());

  const preflight = (origin: string, method = 'POST', headers = 'content-type') =>
    fetch(`${h.url}/items`, {
      method: 'OPTIONS',
      headers: {
        origin,
        'access-control-request-method': method,
        'access-control-request-headers': headers,
      },
    });

  it('answers an allowed preflight with 204 at the gateway (no auth needed)', async () => {
    const res = await preflight('https://app.example.com');
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(res.headers.get('access-control-allow-methods')).toBe('GET, POST');
    expect(res.headers.get('access-control-allow-headers')).toBe('content-type, authorization');
    expect(res.headers.get('access-control-allow-credentials')).toBe('true');
    expect(res.headers.get('access-control-max-age')).toBe('120');
    expect(res.headers.get('vary')).toContain('Origin');
    // Answered at the gateway: the echo upstream would have answered 200 with a JSON body.
    expect(await res.text()).toBe('');
  });

  it('matches origin patterns anchored', async () => {
    expect((await preflight('https://pr-12.preview.example.com')).status).toBe(204);
    expect((await preflight('https://pr-12.preview.example.com.evil.test')).status).toBe(403);
    expect((await preflight('https://evil.test/https://pr-1.preview.example.com')).status).toBe(
      403,
    );
  });

  it('403 for a disallowed origin, method or header', async () => {
    const badOrigin = await preflight('https://evil.test');
    expect(badOrigin.status).toBe(403);
    expect(badOrigin.headers.get('access-control-allow-origin')).toBeNull();
    expect((await preflight('https://app.example.com', 'DELETE')).status).toBe(403);
    expect((await preflight('https://app.example.com', 'POST', 'x-custom')).status).toBe(403);
  });

  it('decorates actual requests, including gateway errors (401), for allowed origins only', async () => {
    const res = await fetch(`${h.url}/items`, { headers: { origin: 'https://app.example.com' } });
    expect(res.status).toBe(401);
    expect(res.headers.get('access-control-allow-origin')).toBe('https://app.example.com');
    expect(res.headers.get('access-control-expose-headers')).toBe('x-request-id');
    const other = await fetch(`${h.url}/items`, { headers: { origin: 'https://evil.test' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('CORS with any origin', () => {
  it("echoes '*' and reflects requested headers when allowHeaders is unset", async () => {
    const h = await startHarness({
      route: { cors: { origins: ['*'] } },
      upstreamHeaders: {
        'access-control-allow-origin': 'https://stale.test',
        vary: 'Accept-Encoding',
      },
    });
    try {
      const pre = await fetch(`${h.url}/x`, {
        method: 'OPTIONS',
        headers: {
          origin: 'https://a.test',
          'access-control-request-method': 'PUT',
          'access-control-request-headers': 'X-One, x-two',
        },
      });
      expect(pre.status).toBe(204);
      expect(pre.headers.get('access-control-allow-origin')).toBe('*');
      expect(pre.headers.get('access-control-allow-headers')).toBe('x-one, x-two');
      const res = await fetch(`${h.url}/x`, { headers: { origin: 'https://a.test' } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('*');
      expect(res.headers.get('vary')).toBe('Accept-Encoding, Origin');
      const noOrigin = await fetch(`${h.url}/x`);
      expect(noOrigin.headers.get('access-control-allow-origin')).toBe('https://stale.test');
    } finally {
      await h.close();
    }
  });
});
