import { getEventListeners } from 'node:events';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { freePort } from '../../../testing/engines.js';
import {
  AbortedError,
  ConfigError,
  ConnectError,
  createClient,
  DEADLINE_HEADER,
  defineEndpoints,
  HttpError,
  type Policy,
  RequestValidationError,
  ResponseValidationError,
  runWithContext,
  runWithDeadline,
  ShutdownError,
  TimeoutError,
} from '../src/index.js';
import { createTestClock } from '../src/testing/index.js';
import {
  json,
  type Recorded,
  startServer,
  type TestServer,
  waitForNoConnections,
} from './clientServer.js';

const Item = z.object({ id: z.string(), name: z.string(), price: z.number() });
const NotFound = z.object({ error: z.literal('not_found') });

const api = defineEndpoints({
  getItem: { method: 'GET', path: '/items/:id', response: Item },
  findItem: { method: 'GET', path: '/find/:id', response: { 200: Item, 404: NotFound } },
  listItems: {
    method: 'GET',
    path: '/items',
    query: z.object({ limit: z.number().int().max(100), tag: z.array(z.string()).optional() }),
    response: z.array(Item),
  },
  createItem: {
    method: 'POST',
    path: '/items',
    body: Item.omit({ id: true }),
    headers: z.object({ 'idempotency-key': z.string().min(8) }),
    response: Item,
  },
  status: { method: 'GET', path: '/status/:code', response: z.unknown() },
  hang: { method: 'GET', path: '/hang', response: z.unknown() },
  reset: { method: 'GET', path: '/reset', response: z.unknown() },
  garbage: { method: 'GET', path: '/garbage', response: z.unknown() },
  wrongShape: { method: 'GET', path: '/wrong', response: Item },
  echo: { method: 'GET', path: '/echo', response: z.object({ url: z.string() }) },
  big: { method: 'GET', path: '/big', response: z.object({ url: z.string() }) },
  untyped: { method: 'GET', path: '/untyped', response: z.object({ url: z.string() }) },
  text: { method: 'GET', path: '/text', response: z.string() },
  head: { method: 'HEAD', path: '/nothing', response: z.undefined() },
  remove: { method: 'DELETE', path: '/nothing', response: { 204: z.undefined() } },
});

const lamp = { id: '7', name: 'lamp', price: 12.5 };

function route(req: Recorded, res: import('node:http').ServerResponse): unknown {
  const url = new URL(req.url, 'http://x');
  const path = url.pathname;
  if (path.startsWith('/items/') && req.method === 'GET') {
    return json(res, 200, { ...lamp, id: decodeURIComponent(path.slice(7)) });
  }
  if (path === '/items' && req.method === 'GET') return json(res, 200, [lamp]);
  if (path === '/items' && req.method === 'POST') {
    return json(res, 201, { id: 'new', ...JSON.parse(req.body) });
  }
  if (path === '/find/7') return json(res, 200, lamp);
  if (path.startsWith('/find/')) return json(res, 404, { error: 'not_found' });
  if (path.startsWith('/status/')) {
    const code = Number(path.slice(8));
    const headers: Record<string, string> = {};
    const retryAfter = url.searchParams.get('retryAfter');
    if (retryAfter !== null) headers['retry-after'] = retryAfter;
    return json(res, code, { code }, headers);
  }
  if (path === '/hang') return; // never answers
  if (path === '/reset') {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' });
    res.write('{"partial":');
    setImmediate(() => res.socket?.destroy());
    return;
  }
  if (path === '/garbage') {
    res.socket?.end('NOT HTTP AT ALL\r\n\r\n');
    return;
  }
  if (path === '/wrong') return json(res, 200, { id: 7, name: 'lamp' });
  if (path === '/echo') return json(res, 200, { url: req.url });
  if (path === '/big') return json(res, 200, { url: 'x'.repeat(100_000) });
  if (path === '/nothing') {
    res.writeHead(req.method === 'HEAD' ? 200 : 204, { 'content-type': 'application/json' });
    return res.end();
  }
  if (path === '/untyped') {
    res.writeHead(200); // no content-type: JSON if it parses
    return res.end(JSON.stringify({ url: 'untyped' }));
  }
  if (path === '/text') {
    res.writeHead(200, { 'content-type': 'text/plain' });
    return res.end('{"url":"not json, says the server"}');
  }
  json(res, 500, { error: 'no route' });
}

describe('createClient against a real HTTP server', () => {
  let server: TestServer;
  let client: ReturnType<typeof createClient<typeof api>>;

  beforeAll(async () => {
    server = await startServer(route);
    client = createClient({ baseUrl: server.url, endpoints: api, headers: { 'X-Team': 'core' } });
  });
  afterAll(async () => {
    await client.close();
    await server.close();
  });
  afterEach(() => {
    server.requests.length = 0;
  });

  it('calls a GET endpoint and returns the parsed body', async () => {
    const item = await client.getItem({ params: { id: 42 } });
    expect(item).toEqual({ ...lamp, id: '42' });
    const req = server.requests[0] as Recorded;
    expect(req.url).toBe('/items/42');
    expect(req.headers.accept).toBe('application/json');
    expect(req.headers['x-team']).toBe('core');
    expect(req.headers.connection).toBe('keep-alive');
  });

  it('encodes each path param as one segment (no path injection)', async () => {
    const item = await client.getItem({ params: { id: '../admin?x=1' } });
    expect(item.id).toBe('../admin?x=1');
    expect(server.requests[0]?.url).toBe('/items/..%2Fadmin%3Fx%3D1');
    await expect(client.getItem({ params: { id: '..' } })).rejects.toBeInstanceOf(
      RequestValidationError,
    );
    expect(server.requests).toHaveLength(1);
  });

  it('serialises the query', async () => {
    const items = await client.listItems({ query: { limit: 5, tag: ['a b', 'c&d'] } });
    expect(items).toEqual([lamp]);
    expect(server.requests[0]?.url).toBe('/items?limit=5&tag=a%20b&tag=c%26d');
  });

  it('sends a JSON body with validated headers', async () => {
    const created = await client.createItem({
      body: { name: 'desk', price: 99 },
      headers: { 'idempotency-key': 'key-12345' },
    });
    expect(created).toEqual({ id: 'new', name: 'desk', price: 99 });
    const req = server.requests[0] as Recorded;
    expect(req.method).toBe('POST');
    expect(req.headers['content-type']).toBe('application/json');
    expect(req.headers['idempotency-key']).toBe('key-12345');
    expect(JSON.parse(req.body)).toEqual({ name: 'desk', price: 99 });
  });

  it('returns { status, body, headers } for a status map', async () => {
    const found = await client.findItem({ params: { id: 7 } });
    expect(found.status).toBe(200);
    expect(found.body).toEqual(lamp);
    expect(found.headers['content-type']).toBe('application/json');
    const missing = await client.findItem({ params: { id: 8 } });
    expect(missing).toMatchObject({ status: 404, body: { error: 'not_found' } });
  });

  it('rejects bad input with RequestValidationError before any I/O', async () => {
    const err = await client
      .createItem({
        // @ts-expect-error: price must be a number
        body: { name: 'desk', price: 'cheap' },
        headers: { 'idempotency-key': 'short' },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestValidationError);
    const issues = (err as RequestValidationError).issues.map((i) => i.path);
    expect(issues).toEqual(['body.price', 'headers.idempotency-key']);
    await expect(client.listItems({ query: { limit: 1000 } })).rejects.toThrow(/query\.limit/);
    expect(server.requests).toHaveLength(0);
  });

  it('rejects header values undici refuses (CR/LF) as RequestValidationError', async () => {
    const err = await client
      .echo({ headers: { 'x-evil': 'a\r\nset-cookie: x=1' } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RequestValidationError);
    expect((err as RequestValidationError).retryable).toBe(false);
    expect(server.requests).toHaveLength(0);
  });

  it('rejects a body that does not match with ResponseValidationError and its issues', async () => {
    const err = await client.wrongShape().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseValidationError);
    const rve = err as ResponseValidationError;
    expect(rve.status).toBe(200);
    expect(rve.issues.map((i) => i.path)).toEqual(['id', 'price']);
    expect(rve.body).toEqual({ id: 7, name: 'lamp' });
    expect(rve.code).toBe('TRELLIS_RESPONSE_INVALID');
  });

  it('resolves HEAD and 204 answers with an undefined body', async () => {
    await expect(client.head()).resolves.toBeUndefined();
    const removed = await client.remove();
    expect(removed.status).toBe(204);
    expect(removed.body).toBeUndefined();
    expect(server.requests.map((r) => r.method)).toEqual(['HEAD', 'DELETE']);
  });

  it('parses JSON by content-type: text stays text, a missing type is JSON if it parses', async () => {
    await expect(client.untyped()).resolves.toEqual({ url: 'untyped' });
    await expect(client.text()).resolves.toBe('{"url":"not json, says the server"}');
  });

  it('maps a non-2xx without a schema to HttpError; 4xx and 500 are not retryable', async () => {
    for (const code of [404, 500]) {
      const err = await client.status({ params: { code } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HttpError);
      const h = err as HttpError;
      expect(h.status).toBe(code);
      expect(h.body).toEqual({ code });
      expect(h.retryable).toBe(false);
      expect(h.retryAfterMs).toBeUndefined();
    }
  });

  it('marks 502/503/504 retryable and reads Retry-After (seconds and HTTP-date)', async () => {
    const statusWithRetry = createClient({
      baseUrl: server.url,
      endpoints: {
        status: {
          method: 'GET',
          path: '/status/:code',
          query: z.object({ retryAfter: z.string() }),
          response: z.unknown(),
        },
      },
    });
    try {
      const e503 = await statusWithRetry
        .status({ params: { code: 503 }, query: { retryAfter: '3' } })
        .catch((e: unknown) => e);
      expect(e503).toBeInstanceOf(HttpError);
      expect((e503 as HttpError).retryable).toBe(true);
      expect((e503 as HttpError).retryAfterMs).toBe(3000);
      expect((e503 as HttpError).headers['retry-after']).toBe('3');
      const date = new Date(Date.now() + 60_000).toUTCString();
      const e502 = (await statusWithRetry
        .status({ params: { code: 502 }, query: { retryAfter: date } })
        .catch((e: unknown) => e)) as HttpError;
      expect(e502.retryable).toBe(true);
      expect(e502.retryAfterMs).toBeGreaterThan(50_000);
      expect(e502.retryAfterMs).toBeLessThanOrEqual(60_000);
      const e504 = (await statusWithRetry
        .status({ params: { code: 504 }, query: { retryAfter: 'x' } })
        .catch((e: unknown) => e)) as HttpError;
      expect(e504.retryable).toBe(true);
      expect(e504.retryAfterMs).toBeUndefined();
    } finally {
      await statusWithRetry.close();
    }
  });

  it('maps a reset in the middle of the body to a retryable ConnectError', async () => {
    const err = await client.reset().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).retryable).toBe(true);
    expect((err as ConnectError).target).toBe(server.url);
  });

  it('maps invalid HTTP to ConnectError', async () => {
    const err = await client.garbage().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as Error).message).toMatch(/failed/);
  });

  it('aborts on the caller signal with AbortedError and the signal reason', async () => {
    const controller = new AbortController();
    const seen = server.nextRequest();
    const call = client.hang({ signal: controller.signal });
    await seen;
    controller.abort(new Error('user went away'));
    const err = await call.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortedError);
    expect(((err as AbortedError).cause as Error).message).toBe('user went away');
    const already = AbortSignal.abort();
    await expect(client.getItem({ params: { id: 1 }, signal: already })).rejects.toBeInstanceOf(
      AbortedError,
    );
  });

  it('leaves no listener on a caller signal it was given', async () => {
    const controller = new AbortController();
    const withPolicy = createClient({ baseUrl: server.url, endpoints: api, policy: retryLoop(2) });
    for (let i = 0; i < 3; i++) {
      await client.echo({ signal: controller.signal });
      await withPolicy.echo({ signal: controller.signal });
    }
    await client.status({ params: { code: 404 } }).catch(() => undefined);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    await withPolicy.close();
  });

  it('sends x-request-id from the request context', async () => {
    await runWithContext({ requestId: 'req-123' }, () => client.echo());
    expect(server.requests[0]?.headers['x-request-id']).toBe('req-123');
    await client.echo({ headers: { 'x-request-id': 'mine' } });
    expect(server.requests[1]?.headers['x-request-id']).toBe('mine');
  });
});

describe('createClient timeouts and deadlines (test clock)', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(route);
  });
  afterAll(() => server.close());

  it('times out a hanging server with TimeoutError and frees the timer', async () => {
    const clock = createTestClock();
    const client = createClient({ baseUrl: server.url, endpoints: api, clock, timeoutMs: 1000 });
    const seen = server.nextRequest();
    const call = client.hang().catch((e: unknown) => e);
    await seen;
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(999);
    expect(clock.pendingTimers).toBe(1);
    await clock.advance(1);
    const err = await call;
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).timeoutMs).toBe(1000);
    expect((err as TimeoutError).retryable).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    await client.close();
  });

  it('sends the remaining budget downstream and lets the ambient deadline clamp timeoutMs', async () => {
    const clock = createTestClock(5_000);
    const client = createClient({ baseUrl: server.url, endpoints: api, clock, timeoutMs: 2000 });
    await client.echo();
    expect(server.requests.at(-1)?.headers[DEADLINE_HEADER]).toBe('2000');
    await runWithDeadline(300, () => client.echo(), clock);
    expect(server.requests.at(-1)?.headers[DEADLINE_HEADER]).toBe('300');
    await runWithDeadline(30_000, () => client.echo({ timeoutMs: 700 }), clock);
    expect(server.requests.at(-1)?.headers[DEADLINE_HEADER]).toBe('700');
    // A deadline that has already passed fails fast, without I/O.
    const before = server.requests.length;
    const late = await runWithDeadline(0, () => client.echo(), clock).catch((e: unknown) => e);
    expect(late).toBeInstanceOf(TimeoutError);
    expect(server.requests.length).toBe(before);
    // The deadline also times out a call in flight.
    const seen = server.nextRequest();
    const call = runWithDeadline(50, () => client.hang(), clock).catch((e: unknown) => e);
    await seen;
    await clock.advance(50);
    expect(await call).toBeInstanceOf(TimeoutError);
    await client.close();
    expect(clock.pendingTimers).toBe(0);
  });
});

/** A hand-written policy: up to `max` attempts while the error is retryable. */
function retryLoop(max: number): Policy & { attempts: number[] } {
  const attempts: number[] = [];
  return {
    attempts,
    async execute(fn, opts) {
      const signal = opts?.signal ?? new AbortController().signal;
      for (let attempt = 1; ; attempt++) {
        attempts.push(attempt);
        try {
          return await fn({ signal, attempt });
        } catch (err) {
          const retryable = (err as { retryable?: boolean }).retryable === true;
          if (!retryable || attempt >= max || signal.aborted) throw err;
        }
      }
    },
  };
}

describe('createClient with a policy', () => {
  it('runs each attempt through the policy and succeeds after retryable failures', async () => {
    let calls = 0;
    const server = await startServer((_req, res) => {
      calls++;
      if (calls < 3) json(res, 503, { busy: true });
      else json(res, 200, lamp);
    });
    const policy = retryLoop(3);
    const client = createClient({ baseUrl: server.url, endpoints: api, policy });
    try {
      const item = await client.getItem({ params: { id: 7 } });
      expect(item).toEqual(lamp);
      expect(policy.attempts).toEqual([1, 2, 3]);
      expect(server.requests).toHaveLength(3);
      // Non-retryable errors stop at once.
      calls = -100;
      policy.attempts.length = 0;
      const err = await client.getItem({ params: { id: 7 } }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(HttpError);
      expect(policy.attempts).toEqual([1, 2, 3]);
    } finally {
      await client.close();
      await server.close();
    }
  });

  it('turns the call deadline into TimeoutError even while the policy is waiting', async () => {
    const clock = createTestClock();
    const server = await startServer(route);
    // A policy that waits (like a backoff) after a failed attempt, honouring its signal.
    let firstError: unknown;
    let waitingStarted: () => void = () => {};
    const waitingNow = new Promise<void>((resolve) => {
      waitingStarted = resolve;
    });
    const waiting: Policy = {
      async execute(fn, opts) {
        const signal = opts?.signal as AbortSignal;
        try {
          return await fn({ signal, attempt: 1 });
        } catch (err) {
          firstError = err;
          waitingStarted();
          await new Promise((_resolve, reject) => {
            signal.addEventListener('abort', () => reject(new Error('policy gave up')));
          });
          throw new Error('unreachable');
        }
      },
    };
    const client = createClient({
      baseUrl: server.url,
      endpoints: api,
      clock,
      policy: waiting,
      timeoutMs: 500,
    });
    try {
      const call = client.status({ params: { code: 503 } }).catch((e: unknown) => e);
      await waitingNow;
      expect(firstError).toBeInstanceOf(HttpError);
      await clock.advance(500);
      const err = await call;
      expect(err).toBeInstanceOf(TimeoutError);
      expect(clock.pendingTimers).toBe(0);
    } finally {
      await client.close();
      await server.close();
    }
  });
});

describe('createClient connection failures and lifecycle', () => {
  it('maps connection refused to a retryable ConnectError', async () => {
    const port = await freePort();
    const client = createClient({ baseUrl: `http://127.0.0.1:${port}`, endpoints: api });
    const err = await client.echo().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).retryable).toBe(true);
    expect((err as ConnectError).code).toBe('TRELLIS_CONNECT_FAILED');
    await client.close();
  });

  it('keeps sockets alive between calls and releases them all on close()', async () => {
    const server = await startServer(route);
    const client = createClient({ baseUrl: server.url, endpoints: api });
    await Promise.all([client.echo(), client.echo(), client.echo()]);
    await client.echo();
    expect(await server.connections()).toBeGreaterThan(0);
    expect(await server.connections()).toBeLessThanOrEqual(3);
    await client.close();
    // The pool closes its sockets; the server sees them go.
    expect(await waitForNoConnections(server)).toBe(0);
    await expect(client.echo()).rejects.toBeInstanceOf(ShutdownError);
    await server.close();
  });

  it('lets an in-flight call finish when close() is called', async () => {
    let release: (() => void) | undefined;
    const server = await startServer((_req, res) => {
      release = () => json(res, 200, { url: 'late' });
    });
    const client = createClient({ baseUrl: server.url, endpoints: api });
    const seen = server.nextRequest();
    const call = client.echo();
    await seen;
    const closing = client.close();
    release?.();
    await expect(call).resolves.toEqual({ url: 'late' });
    await closing;
    await server.close();
  });

  it('validates options with ConfigError naming the field', () => {
    expect(() => createClient({ baseUrl: 'ftp://x', endpoints: api })).toThrow(ConfigError);
    expect(() => createClient({ baseUrl: 'http://x', endpoints: api, timeoutMs: -1 })).toThrow(
      /timeoutMs/,
    );
    expect(() =>
      // @ts-expect-error: a resolver is required with service
      createClient({ service: 'items', endpoints: api }),
    ).toThrow(/resolver/);
    expect(() =>
      createClient({
        baseUrl: 'http://x',
        endpoints: { close: { method: 'GET', path: '/c', response: z.unknown() } },
      }),
    ).toThrow(/reserved/);
    expect(() =>
      createClient({
        baseUrl: 'http://x',
        endpoints: { bad: { method: 'GET', path: '/c', response: { 200: 'nope' } } },
      } as never),
    ).toThrow(/endpoints\.bad\.response/);
    expect(() =>
      createClient({
        baseUrl: 'http://x',
        endpoints: { typo: { method: 'GET', path: '/c', respons: z.unknown() } },
      } as never),
    ).toThrow(/endpoints\.typo/);
    expect(() =>
      createClient({ baseUrl: 'http://x', endpoints: api, retries: 3 } as never),
    ).toThrow(/retries/);
  });
});

describe('createClient response size limit', () => {
  it('aborts a body over maxResponseBytes with ResponseValidationError, then carries on', async () => {
    const server = await startServer(route);
    const client = createClient({ baseUrl: server.url, endpoints: api, maxResponseBytes: 10_000 });
    const err = await client.big().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResponseValidationError);
    expect((err as ResponseValidationError).issues[0]?.path).toBe('(body)');
    await expect(client.echo()).resolves.toEqual({ url: '/echo' });
    const roomy = createClient({ baseUrl: server.url, endpoints: api });
    expect((await roomy.big()).url).toHaveLength(100_000);
    await client.close();
    await roomy.close();
    await server.close();
  });
});

describe('createClient response validation modes', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startServer(route);
  });
  afterAll(() => server.close());

  it('skips validation when validateResponse is false', async () => {
    const client = createClient({ baseUrl: server.url, endpoints: api, validateResponse: false });
    await expect(client.wrongShape()).resolves.toEqual({ id: 7, name: 'lamp' });
    await client.close();
  });

  it('validates exactly sampleRate of responses', async () => {
    const client = createClient({
      baseUrl: server.url,
      endpoints: api,
      validateResponse: { sampleRate: 0.25 },
    });
    let failures = 0;
    for (let i = 0; i < 8; i++) {
      await client.wrongShape().catch((e: unknown) => {
        if (e instanceof ResponseValidationError) failures++;
      });
    }
    expect(failures).toBe(2);
    await client.close();
  });
});

describe('createClient metrics', () => {
  it('records http_client_request_duration_seconds; a second client reuses the metric', async () => {
    const server = await startServer(route);
    const registry = new Registry();
    const a = createClient({ baseUrl: server.url, endpoints: api, metrics: registry });
    const b = createClient({ baseUrl: server.url, endpoints: api, metrics: { registry } });
    try {
      await a.echo();
      await b.echo();
      await b.status({ params: { code: 404 } }).catch(() => undefined);
      const text = await registry.metrics();
      const labels = `http_request_method="GET",server_address="127.0.0.1",server_port="${server.port}"`;
      expect(text).toContain('# TYPE http_client_request_duration_seconds histogram');
      expect(text).toContain(
        `http_client_request_duration_seconds_count{${labels},http_response_status_code="200"} 2`,
      );
      expect(text).toContain(
        `http_client_request_duration_seconds_count{${labels},http_response_status_code="404",error_type="404"} 1`,
      );
      expect(text).not.toContain('=""');
      expect(text).toContain('le="0.005"');
      expect(text).toContain('le="7.5"');
    } finally {
      await a.close();
      await b.close();
      await server.close();
    }
  });
});
