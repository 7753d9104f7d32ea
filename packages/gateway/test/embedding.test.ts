/** The gateway inside real Express and Fastify apps, including a body parser that ran first. */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { trellisGateway } from '../src/fastify.js';
import { createGateway, type Gateway } from '../src/index.js';
import { startUpstream, type Upstream } from './helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

async function upstream(): Promise<Upstream> {
  const u = await startUpstream();
  cleanup.push(() => u.close());
  return u;
}

function gatewayFor(up: Upstream, extra: object = {}): Gateway {
  const g = createGateway({ routes: [{ path: '/api', upstream: { urls: [up.url] }, ...extra }] });
  cleanup.push(() => g.close());
  return g;
}

async function serve(server: Server): Promise<string> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  cleanup.push(
    () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  );
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('Express', () => {
  it('app.use(gateway.handler) proxies and streams the body', async () => {
    const up = await upstream();
    const app = express();
    app.get('/local', (_req, res) => {
      res.send('local');
    });
    app.use(gatewayFor(up).handler);
    const url = await serve(createServer(app));
    expect(await (await fetch(`${url}/local`)).text()).toBe('local');
    const res = await fetch(`${url}/api/x`, { method: 'POST', body: 'raw body' });
    expect(await res.json()).toMatchObject({ url: '/api/x', body: 'raw body' });
  });

  it('re-serialises a body that express.json() already consumed, never hangs', async () => {
    const up = await upstream();
    const app = express();
    app.use(express.json());
    app.use(express.urlencoded({ extended: false }));
    app.use(gatewayFor(up).handler);
    const url = await serve(createServer(app));
    const json = await fetch(`${url}/api/j`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ a: 1, b: ['x'] }),
    });
    expect(json.status).toBe(200);
    expect(JSON.parse(((await json.json()) as { body: string }).body)).toEqual({ a: 1, b: ['x'] });
    const form = await fetch(`${url}/api/f`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'a=1&b=two',
    });
    expect(((await form.json()) as { body: string }).body).toBe('a=1&b=two');
    expect(up.seen[0]?.headers['content-length']).toBe(String('{"a":1,"b":["x"]}'.length));
  });

  it('answers 400 when a consumed body cannot be re-serialised', async () => {
    const up = await upstream();
    const app = express();
    app.use((req, _res, next) => {
      // A parser that eats the stream and leaves something unserialisable.
      req.on('data', () => {});
      req.on('end', () => {
        (req as typeof req & { body: unknown }).body = { nested: { deep: 1 } };
        next();
      });
    });
    app.use(gatewayFor(up).handler);
    const url = await serve(createServer(app));
    const res = await fetch(`${url}/api/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/octet-stream' },
      body: 'abc',
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ status: 400, code: 'TRELLIS_GATEWAY_BODY_CONSUMED' });
    expect(up.seen).toHaveLength(0);
  });
});

describe('Fastify', () => {
  it('the plugin proxies, streams bodies, and leaves other routes alone', async () => {
    const up = await upstream();
    const app = Fastify();
    cleanup.push(() => app.close());
    app.get('/local', async () => 'local');
    await app.register(trellisGateway, { gateway: gatewayFor(up) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    expect(await (await fetch(`${url}/local`)).text()).toBe('local');
    const res = await fetch(`${url}/api/x?y=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"k":"v"}',
    });
    expect(await res.json()).toMatchObject({ url: '/api/x?y=1', body: '{"k":"v"}' });
    expect((await fetch(`${url}/other`)).status).toBe(404);
  });

  it('re-serialises a body a host-level parser consumed', async () => {
    const up = await upstream();
    const app = Fastify();
    cleanup.push(() => app.close());
    // The host parses JSON in a preValidation-free way: a hook that reads the body first.
    app.addHook('preHandler', async (request) => {
      if (request.body === undefined && request.headers['content-type'] === 'application/json') {
        const chunks: Buffer[] = [];
        for await (const c of request.raw) chunks.push(c as Buffer);
        (request as { body: unknown }).body = JSON.parse(Buffer.concat(chunks).toString());
      }
    });
    await app.register(trellisGateway, { gateway: gatewayFor(up) });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const res = await fetch(`${url}/api/x`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"k":"v"}',
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { body: string }).body).toBe('{"k":"v"}');
  });
});

describe('WebSocket upgrades', () => {
  it('attachUpgrade proxies a WebSocket both ways; on a plain route the request is served without the upgrade', async () => {
    // Plain requests (no Upgrade header reached it) get 426 from this upstream.
    const wsUpstream = createServer((_req, res) => {
      res.statusCode = 426;
      res.end('upgrade required');
    });
    const wss = new WebSocketServer({ server: wsUpstream });
    wss.on('connection', (socket, req) => {
      socket.send(`hello ${req.url}`);
      socket.on('message', (m) => socket.send(`echo ${String(m)}`));
    });
    const upUrl = await serve(wsUpstream);
    cleanup.push(async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    });
    const gateway = createGateway({
      routes: [
        { path: '/ws', websocket: true, upstream: { urls: [upUrl] } },
        { path: '/plain', upstream: { urls: [upUrl] } },
      ],
    });
    const server = createServer(gateway.handler);
    gateway.attachUpgrade(server);
    const url = (await serve(server)).replace('http', 'ws');
    cleanup.push(() => gateway.close());
    const client = new WebSocket(`${url}/ws/room?x=1`);
    const messages: string[] = [];
    client.on('message', (m) => {
      messages.push(String(m));
      if (messages.length === 1) client.send('ping');
      if (messages.length === 2) client.close();
    });
    await once(client, 'close');
    expect(messages).toEqual(['hello /ws/room?x=1', 'echo ping']);
    const refused = new WebSocket(`${url}/plain`);
    const [err] = (await once(refused, 'error')) as [Error];
    expect(err.message).toContain('426');
  });

  it('upgrades go through the route chain: auth refuses a WebSocket without credentials', async () => {
    const { createHash } = await import('node:crypto');
    const wsUpstream = createServer();
    const wss = new WebSocketServer({ server: wsUpstream });
    wss.on('connection', (socket) => socket.send('welcome'));
    const upUrl = await serve(wsUpstream);
    cleanup.push(async () => {
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((r) => wss.close(() => r()));
    });
    const sha256 = createHash('sha256').update('s3cret-key-value', 'utf8').digest('hex');
    const gateway = createGateway({
      auth: { apiKeys: { keys: { tester: { sha256 } } } },
      routes: [
        { path: '/ws', websocket: true, auth: { apiKey: true }, upstream: { urls: [upUrl] } },
      ],
    });
    const server = createServer(gateway.handler);
    gateway.attachUpgrade(server);
    const url = (await serve(server)).replace('http', 'ws');
    cleanup.push(() => gateway.close());
    const anonymous = new WebSocket(`${url}/ws`);
    const [err] = (await once(anonymous, 'error')) as [Error];
    expect(err.message).toContain('401');
    expect(wss.clients.size).toBe(0);
    const keyed = new WebSocket(`${url}/ws`, { headers: { 'x-api-key': 's3cret-key-value' } });
    const [msg] = (await once(keyed, 'message')) as [Buffer];
    expect(String(msg)).toBe('welcome');
    keyed.close();
    await once(keyed, 'close');
  });
});
