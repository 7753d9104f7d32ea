// The typed client under odd and hostile input (issue 18 items 1, 3, 4; issue 17 items 5, 10 and
// problem bodies), against real HTTP servers on port 0, with the real resilience policies and
// the real discovery balancer.
import { roundRobin, staticDiscovery } from '@trellis/discovery';
import { pipeline, retry, timeout } from '@trellis/resilience';
import { afterEach, describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { freePort } from '../../../testing/engines.js';
import {
  AbortedError,
  type Client,
  ConnectError,
  classifyFault,
  createClient,
  defineEndpoints,
  HttpError,
  RequestValidationError,
  ResponseValidationError,
  runWithDeadline,
  TimeoutError,
} from '../src/index.js';
import { json, startServer, type TestServer } from './clientServer.js';

const Item = z.object({ id: z.string() });
const api = defineEndpoints({
  create: {
    method: 'POST',
    path: '/items',
    body: z.object({ name: z.string() }),
    // A transform that throws: zod lets the exception escape from safeParse.
    response: Item.transform((): { id: string } => {
      throw new Error('transform exploded');
    }),
  },
  post: { method: 'POST', path: '/items', body: z.object({ name: z.string() }), response: Item },
  get: { method: 'GET', path: '/items/:id', response: Item },
  search: {
    method: 'GET',
    path: '/search',
    query: z.object({ q: z.string().optional(), limit: z.number().optional() }),
    headers: z.object({ 'x-tenant': z.string().optional() }),
    response: z.array(Item),
  },
});

let server: TestServer | undefined;
const clients: Client<typeof api>[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  await server?.close();
  server = undefined;
});

function client(options: Omit<Parameters<typeof createClient<typeof api>>[0], 'endpoints'>) {
  const c = createClient({ ...options, endpoints: api } as Parameters<
    typeof createClient<typeof api>
  >[0]);
  clients.push(c);
  return c;
}

const fastRetry = () => retry({ maxAttempts: 3, backoff: { initialMs: 1, maxMs: 2 } });

describe('a request that may have reached the upstream is not sent twice', () => {
  it('a response schema that throws on a POST behind retry(): one request, ResponseValidationError', async () => {
    server = await startServer((_r, res) => json(res, 201, { id: 'a' }));
    const c = client({ baseUrl: server.url, policy: fastRetry() });
    const err = await c.create({ body: { name: 'x' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseValidationError);
    expect((err as ResponseValidationError).message).toMatch(/transform exploded/);
    expect((err as ResponseValidationError).retryable).toBe(false);
    expect(classifyFault(err)).not.toBe('upstream');
    expect(server.requests).toHaveLength(1);
  });

  it('a POST whose connection resets after sending is not re-sent; with an Idempotency-Key, or a GET, it is', async () => {
    server = await startServer((_r, res) => res.socket?.destroy());
    const c = client({ baseUrl: server.url, policy: fastRetry() });
    const err = await c.post({ body: { name: 'x' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).retryable).toBe(false);
    expect(server.requests).toHaveLength(1);

    const keyed = await c
      .post({ body: { name: 'x' }, headers: { 'idempotency-key': 'k-1' } })
      .catch((e: unknown) => e);
    expect(keyed).toBeInstanceOf(ConnectError);
    expect(server.requests).toHaveLength(4);

    await c.get({ params: { id: '1' } }).catch(() => undefined);
    expect(server.requests).toHaveLength(7);
  });

  it('a POST answered 503 is not re-sent, unless the answer is a Trellis shed (not processed)', async () => {
    let shed = false;
    server = await startServer((_r, res) =>
      json(res, 503, { error: 'busy' }, shed ? { 'x-trellis-shed': 'limit' } : {}),
    );
    const c = client({ baseUrl: server.url, policy: fastRetry() });
    await expect(c.post({ body: { name: 'x' } })).rejects.toBeInstanceOf(HttpError);
    expect(server.requests).toHaveLength(1);
    shed = true;
    await expect(c.post({ body: { name: 'x' } })).rejects.toBeInstanceOf(HttpError);
    expect(server.requests).toHaveLength(4);
  });

  it('a POST refused before connecting (nothing sent) may be retried', async () => {
    const port = await freePort();
    const c = client({ baseUrl: `http://127.0.0.1:${port}`, policy: fastRetry() });
    const policy = fastRetry();
    let retries = 0;
    policy.onRetry(() => retries++);
    const c2 = client({ baseUrl: `http://127.0.0.1:${port}`, policy });
    const err = await c2.post({ body: { name: 'x' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).retryable).toBe(true);
    expect(retries).toBe(2);
    void c;
  });
});

describe('bad input is refused before any I/O', () => {
  it('a lone UTF-16 surrogate in a path param, a query value or a query key', async () => {
    server = await startServer((_r, res) => json(res, 200, []));
    const c = client({ baseUrl: server.url });
    for (const call of [
      () => c.get({ params: { id: 'a\uD800' } }),
      () => c.get({ params: { id: '\uDC00' } }),
      () => c.search({ query: { q: 'x\uDFFFy' } }),
    ]) {
      const err = await call().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RequestValidationError);
      expect((err as Error).message).toMatch(/lone surrogate/);
    }
    // A well-formed pair is fine.
    await c.search({ query: { q: '\uD83D\uDE00' } });
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]?.url).toBe('/search?q=%F0%9F%98%80');
  });

  it('header values with CR, LF, NUL or other controls, and bad header names', async () => {
    server = await startServer((_r, res) => json(res, 200, { id: '1' }));
    const c = client({ baseUrl: server.url });
    const cases: Record<string, string>[] = [
      { 'x-a': 'v\r\nx-injected: 1' },
      { 'x-a': 'v\nb' },
      { 'x-a': 'v\0' },
      { 'x-a': 'v\u0001' },
      { 'x-a': 'v\u2028' },
      { 'bad name': 'v' },
      { 'x-a:b': 'v' },
    ];
    for (const headers of cases) {
      const err = await c.get({ params: { id: '1' }, headers }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(RequestValidationError);
      expect((err as RequestValidationError).issues[0]?.path).toMatch(/^headers\./);
    }
    await c.get({ params: { id: '1' }, headers: { 'x-a': 'tab\tand obs-text \u00e9' } });
    expect(server.requests).toHaveLength(1);
  });

  it('client-wide headers are checked when the client is made', () => {
    expect(() =>
      createClient({ baseUrl: 'http://127.0.0.1:1', endpoints: api, headers: { 'x-a': 'a\r\nb' } }),
    ).toThrow(/headers\.x-a/);
  });
});

describe("the caller's own faults never eject a healthy instance", () => {
  async function discovered() {
    const ejections: unknown[] = [];
    const balancer = roundRobin();
    balancer.onEject((e) => ejections.push(e));
    const resolver = staticDiscovery({ services: { items: [server?.url as string] } });
    const c = createClient({ service: 'items', resolver, balancer, endpoints: api });
    clients.push(c);
    return { c, ejections, resolver };
  }

  it('CR/LF headers, caller aborts, inherited deadlines: no ejection; a dead upstream is ejected', async () => {
    server = await startServer((r, res) => {
      if (r.url === '/items/slow') setTimeout(() => json(res, 200, { id: 's' }), 200);
      else json(res, 200, { id: '1' });
    });
    const { c, ejections, resolver } = await discovered();
    for (let i = 0; i < 8; i++) {
      await expect(
        c.get({ params: { id: '1' }, headers: { 'x-a': 'a\r\nb' } }),
      ).rejects.toBeInstanceOf(RequestValidationError);
    }
    for (let i = 0; i < 8; i++) {
      const err = await c
        .get({ params: { id: 'slow' }, signal: AbortSignal.timeout(5) })
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AbortedError);
    }
    for (let i = 0; i < 8; i++) {
      const err = await runWithDeadline(5, () => c.get({ params: { id: 'slow' } })).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).deadline).toBe(true);
      expect(classifyFault(err)).toBe('caller');
      expect((err as TimeoutError).message).toMatch(/caller's deadline/);
    }
    expect(ejections).toEqual([]);
    await expect(c.get({ params: { id: '1' } })).resolves.toEqual({ id: '1' });

    // The same balancer does eject for upstream faults (the rule is not "never eject").
    await server.close();
    server = undefined;
    for (let i = 0; i < 6; i++) await c.get({ params: { id: '1' } }).catch(() => undefined);
    expect(ejections.length).toBeGreaterThan(0);
    await resolver.close();
  });
});

describe('timeouts name the limit that ran out', () => {
  it("a per-attempt timeout(100) under retry reports the policy's limit, never the client's 10 s", async () => {
    server = await startServer(() => {
      /* never answers */
    });
    const c2 = client({
      baseUrl: server.url,
      policy: pipeline(
        retry({ maxAttempts: 2, backoff: { initialMs: 1, maxMs: 2 } }),
        timeout(100),
      ),
    });
    for (let i = 0; i < 3; i++) {
      const err = await c2.get({ params: { id: String(i) } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TimeoutError);
      expect((err as TimeoutError).timeoutMs).toBe(100);
      expect((err as Error).message).not.toMatch(/10000/);
    }
  });

  it("the client's own budget says timeoutMs; a per-call timeoutMs past 2^31-1 is clamped, not 1 ms", async () => {
    server = await startServer((_r, res) => setTimeout(() => json(res, 200, { id: 'x' }), 30));
    const c = client({ baseUrl: server.url, timeoutMs: 10, policy: fastRetry() });
    const err = await c.get({ params: { id: '1' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toMatch(/timeoutMs \(10 ms\)/);
    await expect(c.get({ params: { id: '1' }, timeoutMs: 2 ** 40 })).resolves.toEqual({ id: 'x' });
  });

  it('ConnectError names the origin once', async () => {
    const port = await freePort();
    const c = client({ baseUrl: `http://127.0.0.1:${port}` });
    const err = (await c.get({ params: { id: '1' } }).catch((e: unknown) => e)) as Error;
    expect(err).toBeInstanceOf(ConnectError);
    const origin = `http://127.0.0.1:${port}`;
    expect(err.message.split(origin)).toHaveLength(2);
    expect(err.message).not.toContain(`(${origin})`);
  });
});

describe('what users expect from the typed client', () => {
  it('an endpoint whose query and headers are all optional can be called without them', async () => {
    server = await startServer((_r, res) => json(res, 200, [{ id: '1' }]));
    const c = client({ baseUrl: server.url });
    expectTypeOf(c.search).parameter(0).toEqualTypeOf<Parameters<typeof c.search>[0]>();
    // Types: no argument at all compiles (tsc checks this file), and so does an empty one.
    await expect(c.search()).resolves.toEqual([{ id: '1' }]);
    await expect(c.search({})).resolves.toEqual([{ id: '1' }]);
    await c.search({ query: { limit: 2 }, headers: { 'x-tenant': 't' } });
    expect(server.requests.map((r) => r.url)).toEqual(['/search', '/search', '/search?limit=2']);
  });

  it('parses an application/problem+json error body into HttpError.problem', async () => {
    const body = {
      type: 'https://trellis.dev/errors/TRELLIS_CONFLICT',
      title: 'Conflict',
      status: 409,
      code: 'APP_CONFLICT',
      detail: 'item exists',
    };
    server = await startServer((_r, res) => {
      res.writeHead(409, { 'content-type': 'application/problem+json; charset=utf-8' });
      res.end(JSON.stringify(body));
    });
    const c = client({ baseUrl: server.url });
    const err = (await c.get({ params: { id: '1' } }).catch((e: unknown) => e)) as HttpError;
    expect(err).toBeInstanceOf(HttpError);
    expect(err.problem).toMatchObject({ code: 'APP_CONFLICT', status: 409, detail: 'item exists' });
    expect(err.body).toEqual(body);
  });
});
