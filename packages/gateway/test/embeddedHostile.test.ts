/**
 * The same front-door rules when the gateway is embedded: in an Express app
 * (`app.use(gateway.handler)`) and as the Fastify plugin. Route walking, TRACE, underscore
 * headers, Expect and the problem+json answers do not depend on who owns the server.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trellisGateway } from '../src/fastify.js';
import { createGateway, type Gateway, hashApiKey } from '../src/index.js';
import { rawRequest, startUpstream, statusOf, type Upstream } from './helpers.js';

let pub: Upstream;
let admin: Upstream;
const config = () => ({
  auth: { apiKeys: { keys: { ops: { sha256: hashApiKey('ops-secret-key-1') } } } },
  routes: [
    { name: 'public', path: '/', upstream: pub.url },
    {
      name: 'admin',
      path: '/admin',
      methods: ['GET' as const],
      auth: { apiKey: true },
      upstream: admin.url,
    },
  ],
});

beforeAll(async () => {
  pub = await startUpstream();
  admin = await startUpstream();
});
afterAll(async () => {
  await pub.close();
  await admin.close();
});

async function express5(): Promise<{ port: number; close: () => Promise<void> }> {
  const gateway: Gateway = createGateway(config());
  const app = express();
  app.use((req, res) => gateway.handler(req, res));
  const server: Server = createServer(app);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as AddressInfo).port,
    close: async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await gateway.close();
    },
  };
}

async function fastify(): Promise<{ port: number; close: () => Promise<void> }> {
  const gateway = createGateway(config());
  const app = Fastify();
  await app.register(trellisGateway, { gateway, closeWithApp: true });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return { port: (app.server.address() as AddressInfo).port, close: () => app.close() };
}

describe.each([
  ['Express', express5],
  ['Fastify', fastify],
])('embedded in %s', (_name, start) => {
  let host: { port: number; close: () => Promise<void> };
  beforeAll(async () => {
    host = await start();
  });
  afterAll(async () => {
    await host.close();
  });
  const send = (head: string) => rawRequest(host.port, `${head}\r\nConnection: close\r\n\r\n`);

  it('refuses route walking and method mismatches with problem+json, reaching no upstream', async () => {
    const before = pub.seen.length + admin.seen.length;
    for (const target of ['/admin;x/users', '/admin%3Bx/users', '/admin%2Fusers']) {
      const raw = await send(`GET ${target} HTTP/1.1\r\nHost: gw`);
      expect(statusOf(raw)).toBe(400);
      expect(raw).toMatch(/^content-type: application\/problem\+json/im);
    }
    const del = await send('DELETE /admin/users HTTP/1.1\r\nHost: gw');
    expect(statusOf(del)).toBe(405);
    expect(statusOf(await send('HEAD /admin/users HTTP/1.1\r\nHost: gw'))).toBe(401);
    expect(pub.seen.length + admin.seen.length).toBe(before);
  });

  it('drops underscore headers and writes the forwarding headers', async () => {
    const raw = await send(
      'GET /x HTTP/1.1\r\nHost: gw\r\nX_User: admin\r\nX-Forwarded-For: 6.6.6.6',
    );
    expect(statusOf(raw)).toBe(200);
    const h = pub.seen.at(-1)?.headers ?? {};
    expect(h.x_user).toBeUndefined();
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
  });

  it('Expect: 100-continue is answered and never forwarded', async () => {
    const raw = await rawRequest(
      host.port,
      'POST /x HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok',
    );
    expect(raw).toContain('HTTP/1.1 200');
    expect(pub.seen.at(-1)?.headers.expect).toBeUndefined();
  });
});
