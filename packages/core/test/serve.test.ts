import { Readable } from 'node:stream';
import { request } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEndpoints } from '../src/contract/endpoint.js';
import { ConfigError, InternalError } from '../src/errors.js';
import { FLAVOURS, memoryLogger, type Served, startServed } from './serveHarness.js';

const Item = z.object({ id: z.string(), name: z.string(), price: z.number() });
const api = defineEndpoints({
  getItem: {
    method: 'GET',
    path: '/items/:id',
    params: z.object({ id: z.string().regex(/^\d+$/, 'must be digits') }),
    query: z.object({ expand: z.enum(['parts']).optional(), tag: z.array(z.string()).optional() }),
    response: { 200: Item, 404: z.object({ error: z.literal('not_found') }) },
  },
  updateItem: {
    method: 'PUT',
    path: '/items/:id',
    params: z.object({ id: z.string() }),
    query: z.object({
      dryRun: z
        .enum(['true', 'false'])
        .transform((v) => v === 'true')
        .optional(),
    }),
    body: z.object({ name: z.string().min(1), price: z.number().nonnegative() }),
    headers: z.object({ 'x-tenant': z.string().min(1) }),
    response: Item,
  },
  broken: { method: 'GET', path: '/broken', response: Item },
  throws: { method: 'GET', path: '/throws', response: Item },
  throwsTrellis: { method: 'GET', path: '/throws-trellis', response: Item },
  created: { method: 'POST', path: '/items', body: Item.omit({ id: true }), response: Item },
});

const handlers = {
  getItem: async ({ params, query }: { params: { id: string }; query: { tag?: string[] } }) =>
    params.id === '0'
      ? { status: 404, body: { error: 'not_found' } }
      : { status: 200, body: { id: params.id, name: (query.tag ?? ['lamp']).join('+'), price: 3 } },
  updateItem: async ({
    params,
    body,
    query,
    headers,
  }: {
    params: { id: string };
    body: { name: string; price: number };
    query: { dryRun?: boolean };
    headers: { 'x-tenant': string };
  }) => ({
    status: 200,
    body: {
      id: params.id,
      name: `${headers['x-tenant']}:${body.name}:${String(query.dryRun)}`,
      price: body.price,
    },
  }),
  broken: async () => ({ status: 200, body: { id: 1, name: 'x', price: 'free' } }),
  throws: async () => {
    throw new Error('secret /home/app/db.ts:12 stack');
  },
  throwsTrellis: async () => {
    throw new InternalError('it broke');
  },
  created: async ({ body }: { body: { name: string; price: number } }) => ({
    status: 201,
    body: { id: '9', ...body },
  }),
};

async function call(
  base: string,
  method: string,
  path: string,
  opts: { body?: string; headers?: Record<string, string> } = {},
) {
  const res = await request(base + path, {
    method: method as 'GET',
    body: opts.body,
    headers: opts.headers,
  });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) };
}

describe.each(FLAVOURS)('serve on %s', (flavour) => {
  let served: Served | undefined;
  afterEach(async () => {
    await served?.close();
    served = undefined;
  });

  it('runs handlers with parsed params, query, body and headers and sends their answer', async () => {
    served = await startServed(flavour, api, handlers);
    const ok = await call(served.base, 'GET', '/items/42?tag=a&tag=b');
    expect(ok.status).toBe(200);
    expect(ok.json()).toEqual({ id: '42', name: 'a+b', price: 3 });
    const one = await call(served.base, 'GET', '/items/42?tag=a');
    expect(one.json().name).toBe('a');
    const missing = await call(served.base, 'GET', '/items/0');
    expect(missing.status).toBe(404);
    expect(missing.json()).toEqual({ error: 'not_found' });
    const put = await call(served.base, 'PUT', '/items/7?dryRun=true', {
      body: JSON.stringify({ name: 'lamp', price: 2 }),
      headers: { 'content-type': 'application/json', 'x-tenant': 'acme' },
    });
    expect(put.status).toBe(200);
    expect(put.json()).toEqual({ id: '7', name: 'acme:lamp:true', price: 2 });
    const created = await call(served.base, 'POST', '/items', {
      body: JSON.stringify({ name: 'x', price: 1 }),
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(created.status).toBe(201);
  });

  it('answers 400 problem+json naming each bad field before the handler runs', async () => {
    let ran = false;
    served = await startServed(flavour, api, {
      ...handlers,
      updateItem: async () => {
        ran = true;
        return { status: 200, body: { id: '1', name: 'x', price: 1 } };
      },
    });
    const bad = await call(served.base, 'PUT', '/items/7', {
      body: JSON.stringify({ name: '', price: -1 }),
      headers: { 'content-type': 'application/json', 'x-tenant': 'acme' },
    });
    expect(bad.status).toBe(400);
    expect(bad.headers['content-type']).toMatch(/^application\/problem\+json/);
    const p = bad.json();
    expect(p).toMatchObject({ status: 400, code: 'TRELLIS_REQUEST_INVALID', title: 'Bad Request' });
    expect(p.errors.map((e: { path: string }) => e.path).sort()).toEqual([
      'body.name',
      'body.price',
    ]);
    const params = await call(served.base, 'GET', '/items/abc');
    expect(params.status).toBe(400);
    expect(params.json().errors).toEqual([{ path: 'params.id', message: 'must be digits' }]);
    const headers = await call(served.base, 'PUT', '/items/7', {
      body: JSON.stringify({ name: 'a', price: 1 }),
      headers: { 'content-type': 'application/json' },
    });
    expect(headers.status).toBe(400);
    expect(headers.json().errors[0].path).toBe('headers.x-tenant');
    expect(ran).toBe(false);
  });

  it('refuses a repeated query key where one value is expected, naming it', async () => {
    served = await startServed(flavour, api, handlers);
    const res = await call(served.base, 'GET', '/items/1?expand=parts&expand=parts');
    expect(res.status).toBe(400);
    expect(res.json().errors).toEqual([
      { path: 'query.expand', message: 'expected one value, got 2' },
    ]);
  });

  it('answers malformed JSON, a wrong content type and an oversized body with a problem, never HTML', async () => {
    served = await startServed(flavour, api, handlers, { bodyLimit: 64 });
    const json = { 'content-type': 'application/json', 'x-tenant': 'acme' };
    const malformed = await call(served.base, 'PUT', '/items/1', {
      body: '{"name": "x",',
      headers: json,
    });
    expect(malformed.status).toBe(400);
    expect(malformed.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(malformed.text).not.toMatch(/<html|<pre|at \w+ \(|node_modules/i);
    expect(malformed.json().errors[0].path).toBe('body');
    const text = await call(served.base, 'PUT', '/items/1', {
      body: 'name=x',
      headers: { 'content-type': 'text/plain', 'x-tenant': 'acme' },
    });
    expect(text.status).toBe(415);
    expect(text.json().code).toBe('TRELLIS_UNSUPPORTED_MEDIA_TYPE');
    const big = await call(served.base, 'PUT', '/items/1', {
      body: JSON.stringify({ name: 'x'.repeat(200), price: 1 }),
      headers: json,
    });
    expect(big.status).toBe(413);
    expect(big.json().code).toBe('TRELLIS_PAYLOAD_TOO_LARGE');
    expect(big.text).not.toMatch(/<html/i);
  });

  it('answers an undeclared method on a declared path 405 with Allow', async () => {
    served = await startServed(flavour, api, handlers);
    const res = await call(served.base, 'DELETE', '/items/1');
    expect(res.status).toBe(405);
    expect(String(res.headers.allow).split(', ').sort()).toEqual(['GET', 'HEAD', 'PUT']);
    expect(res.json().code).toBe('TRELLIS_METHOD_NOT_ALLOWED');
  });

  it('turns an answer that breaks the contract into a 500 and logs the endpoint and field', async () => {
    const logger = memoryLogger();
    served = await startServed(flavour, api, handlers, { logger });
    const res = await call(served.base, 'GET', '/broken');
    expect(res.status).toBe(500);
    expect(res.json()).toMatchObject({
      code: 'TRELLIS_RESPONSE_INVALID',
      detail: 'internal error',
    });
    expect(res.text).not.toContain('price');
    const line = logger.lines.find((l) => l.level === 'error');
    expect(line?.obj).toMatchObject({ endpoint: 'broken' });
    expect(JSON.stringify(line?.obj)).toContain('body.price');
    expect(JSON.stringify(line?.obj)).toContain('body.id');
  });

  it('lets a broken answer through when validateResponse is false', async () => {
    served = await startServed(flavour, api, handlers, { validateResponse: false });
    const res = await call(served.base, 'GET', '/broken');
    expect(res.status).toBe(200);
    expect(res.json().price).toBe('free');
  });

  it('maps thrown errors: Trellis errors keep their status, others are 500 with a generic detail', async () => {
    const logger = memoryLogger();
    served = await startServed(flavour, api, handlers, { logger });
    const res = await call(served.base, 'GET', '/throws');
    expect(res.status).toBe(500);
    expect(res.json()).toMatchObject({ code: 'TRELLIS_INTERNAL', detail: 'internal error' });
    expect(res.text).not.toContain('secret');
    expect(
      logger.lines.some((l) => l.level === 'error' && JSON.stringify(l.obj).includes('throws')),
    ).toBe(true);
    const trellis = await call(served.base, 'GET', '/throws-trellis');
    expect(trellis.status).toBe(500);
    expect(trellis.json().code).toBe('TRELLIS_INTERNAL');
  });
});

describe('serve: configuration', () => {
  it('refuses missing and extra handlers and bad options with a ConfigError naming them', async () => {
    const { serve } = await import('../src/express.js');
    const small = defineEndpoints({ a: { method: 'GET', path: '/a', response: z.string() } });
    expect(() => serve(small, {} as never)).toThrow(ConfigError);
    expect(() => serve(small, {} as never)).toThrow(/handlers\.a: missing/);
    expect(() =>
      serve(small, { a: () => ({ status: 200, body: '' }), b: () => 1 } as never),
    ).toThrow(/handlers\.b: no endpoint of this name/);
    expect(() => serve(small, { a: () => ({ status: 200, body: '' }) }, { bodyLimit: -1 })).toThrow(
      /bodyLimit/,
    );
    const { serve: serveF } = await import('../src/fastify.js');
    expect(() => serveF(small, {} as never)).toThrow(/handlers\.a: missing/);
  });
});

describe.each(FLAVOURS)('serve on %s: hostile input', (flavour) => {
  let served: Served | undefined;
  afterEach(async () => {
    await served?.close();
    served = undefined;
  });

  it('answers malformed percent-encoding in a path param with a 400 problem', async () => {
    served = await startServed(flavour, api, handlers);
    const res = await call(served.base, 'GET', '/items/%E0%A4%A');
    expect(res.status).toBe(400);
    expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('keeps __proto__ in a JSON body as data, never as a prototype', async () => {
    served = await startServed(flavour, api, handlers);
    const res = await call(served.base, 'POST', '/items', {
      body: '{"name":"x","price":1,"__proto__":{"polluted":true}}',
      headers: { 'content-type': 'application/json' },
    });
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
    if (flavour === 'Fastify') {
      // Fastify's JSON parser refuses prototype poisoning outright.
      expect(res.status).toBe(400);
      expect(res.json().errors[0].path).toBe('body');
    } else {
      expect(res.status).toBe(201);
      expect(res.json()).toEqual({ id: '9', name: 'x', price: 1 });
    }
  });

  it('answers a JSON body that is not an object, and an empty one, with a 400 naming body', async () => {
    served = await startServed(flavour, api, handlers);
    for (const body of ['[1,2]', '"text"', 'null']) {
      const res = await call(served.base, 'POST', '/items', {
        body,
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status, body).toBe(400);
      expect(res.json().errors[0].path, body).toBe('body');
    }
    const empty = await call(served.base, 'POST', '/items', {
      headers: { 'content-type': 'application/json', 'content-length': '0' },
    });
    expect(empty.status).toBe(400);
    expect(empty.headers['content-type']).toMatch(/^application\/problem\+json/);
  });

  it('refuses an oversized chunked body without reading it all', async () => {
    served = await startServed(flavour, api, handlers, { bodyLimit: 1024 });
    const big = Buffer.alloc(64 * 1024, 32);
    const res = await request(`${served.base}/items`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      // A stream: sent chunked, without Content-Length.
      body: Readable.from([Buffer.from('{"name":"'), big, Buffer.from('","price":1}')]),
    }).catch((err: unknown) => err as Error);
    if (res instanceof Error) {
      // The server may close the connection before the client finished sending: acceptable.
      expect(res.message).toMatch(/closed|reset|socket/i);
      return;
    }
    expect(res.statusCode).toBe(413);
    expect((await res.body.json()) as { code: string }).toMatchObject({
      code: 'TRELLIS_PAYLOAD_TOO_LARGE',
    });
  });
});

// What the handler is given beyond the parts, and bodies where none or another type is sent.
const inputApi = defineEndpoints({
  touch: { method: 'POST', path: '/touch', response: z.object({ body: z.string() }) },
  slow: { method: 'GET', path: '/slow', response: z.object({ ok: z.boolean() }) },
  put: {
    method: 'PUT',
    path: '/things/:id',
    body: z.object({ name: z.string() }),
    response: z.object({ name: z.string() }),
  },
});

describe.each(FLAVOURS)('serve on %s: handler input', (flavour) => {
  let served: Served | undefined;
  afterEach(async () => {
    await served?.close();
    served = undefined;
  });

  it('aborts the handler signal when the client goes away, and only then', async () => {
    let entered!: () => void;
    const started = new Promise<void>((r) => {
      entered = r;
    });
    let aborted!: (reason: unknown) => void;
    const abortSeen = new Promise<unknown>((r) => {
      aborted = r;
    });
    const seen: { body: unknown; query: unknown; aborted: boolean }[] = [];
    served = await startServed(flavour, inputApi, {
      touch: async (input: { body: unknown; query: unknown; signal: AbortSignal }) => {
        seen.push({ body: input.body, query: input.query, aborted: input.signal.aborted });
        return { status: 200, body: { body: String(input.body) } };
      },
      slow: async ({ signal }: { signal: AbortSignal }) => {
        signal.addEventListener('abort', () => aborted(signal.reason));
        entered();
        await new Promise((r) => signal.addEventListener('abort', r));
        return { status: 200, body: { ok: true } };
      },
      put: async ({ body }: { body: { name: string } }) => ({ status: 200, body }),
    });
    const ok = await call(served.base, 'POST', '/touch?x=1');
    expect(ok.status).toBe(200);
    const controller = new AbortController();
    const pending = request(`${served.base}/slow`, { signal: controller.signal }).catch(
      (err: unknown) => err,
    );
    await started;
    controller.abort();
    expect(String(await abortSeen)).toMatch(/went away/);
    expect(await pending).toBeInstanceOf(Error);
    // No body or query schema: the handler gets neither, and its signal was not aborted.
    expect(seen).toEqual([{ body: undefined, query: undefined, aborted: false }]);
  });

  it('refuses a body with no content type or a non-JSON one 415, and ignores one where no body is declared', async () => {
    served = await startServed(flavour, inputApi, {
      touch: async ({ body }: { body: unknown }) => ({
        status: 200,
        body: { body: String(body) },
      }),
      slow: async () => ({ status: 200, body: { ok: true } }),
      put: async ({ body }: { body: { name: string } }) => ({ status: 200, body }),
    });
    const body = JSON.stringify({ name: 'x' });
    for (const headers of [
      {},
      { 'content-type': 'text/plain' },
      { 'content-type': 'application/xml' },
    ] as Record<string, string>[]) {
      const res = await call(served.base, 'PUT', '/things/1', { body, headers });
      expect(res.status, JSON.stringify(headers)).toBe(415);
      expect(res.json().code).toBe('TRELLIS_UNSUPPORTED_MEDIA_TYPE');
      expect(res.json().detail).toBe(
        `content-type ${headers['content-type'] ?? '(none)'} is not supported: send application/json`,
      );
    }
    const json = await call(served.base, 'PUT', '/things/1', {
      body,
      headers: { 'content-type': 'application/json; charset=utf-8' },
    });
    expect(json.status).toBe(200);
    expect(json.json()).toEqual({ name: 'x' });
    const ignored = await call(served.base, 'POST', '/touch', {
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(ignored.status).toBe(200);
    expect(ignored.json()).toEqual({ body: 'undefined' });
  });
});
