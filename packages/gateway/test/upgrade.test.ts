/**
 * The WebSocket path is the HTTP path with another terminal (issue 16 classes 1 and 4): an
 * upstream that refuses the handshake is relayed with its status and never crashes the
 * gateway; upgrades get the same header rules, metrics and access-log line; requests with an
 * `Upgrade` header on plain routes (`Upgrade: h2c`) are served as plain requests, standalone and
 * inside Fastify, where the host app keeps its own routes.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import Fastify from 'fastify';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { trellisGateway } from '../src/fastify.js';
import { createGateway } from '../src/index.js';
import { rawRequest, startGateway, statusOf } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

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

/** A WebSocket upstream recording the handshake headers; `refuse` answers instead of upgrading. */
async function wsUpstream(refuse?: (req: IncomingMessage, socket: Duplex) => void) {
  const server = createServer((_req, res) => res.end('plain'));
  const wss = new WebSocketServer({ noServer: true });
  const seen: IncomingMessage[] = [];
  server.on('upgrade', (req, socket, head) => {
    seen.push(req);
    if (refuse) return refuse(req, socket);
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.send('welcome');
      ws.on('message', (m) => ws.send(`echo ${String(m)}`));
    });
  });
  const url = await serve(server);
  cleanup.push(async () => {
    for (const c of wss.clients) c.terminate();
    wss.close();
  });
  return { url, seen };
}

const capture = () => {
  const lines: Record<string, unknown>[] = [];
  const log = (obj: unknown) => lines.push(obj as Record<string, unknown>);
  const logger = {
    info: log,
    warn: log,
    error: log,
    debug: log,
    trace: log,
    fatal: log,
    child: () => logger,
  };
  return { lines, logger: logger as never };
};

describe('WebSocket refusals', () => {
  it("an upstream that refuses like the ws README's auth example (401, no body, destroy) is relayed; the process lives", async () => {
    const up = await wsUpstream((_req, socket) => {
      socket.write('HTTP/1.1 401 Unauthorized\r\n\r\n');
      socket.destroy();
    });
    const g = await startGateway({ routes: [{ path: '/ws', websocket: true, upstream: up.url }] });
    cleanup.push(() => g.gateway.close());
    for (let i = 0; i < 3; i++) {
      const client = new WebSocket(`${g.url.replace('http', 'ws')}/ws`);
      const [err] = (await once(client, 'error')) as [Error];
      expect(err.message).toContain('401');
    }
    const raw = await rawRequest(
      g.port,
      'GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(401);
    expect(up.seen.length).toBe(4);
  });

  it("an upstream's 403 with a body comes back as 403, not 502", async () => {
    const up = await wsUpstream((_req, socket) => {
      socket.end(
        'HTTP/1.1 403 Forbidden\r\ncontent-type: text/plain\r\ncontent-length: 6\r\n\r\nno way',
      );
    });
    const g = await startGateway({ routes: [{ path: '/ws', websocket: true, upstream: up.url }] });
    cleanup.push(() => g.gateway.close());
    const raw = await rawRequest(
      g.port,
      'GET /ws HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(403);
    expect(raw.endsWith('no way')).toBe(true);
    expect(raw).toMatch(/^x-request-id: /im);
  });
});

describe('upgrades share the pipeline', () => {
  it('same header rules, and a metrics sample and an access-log line per upgrade', async () => {
    const up = await wsUpstream();
    const { lines, logger } = capture();
    const g = await startGateway(
      { routes: [{ name: 'ws', path: '/ws', websocket: true, upstream: up.url }] },
      { logger },
    );
    cleanup.push(() => g.gateway.close());
    const client = new WebSocket(`${g.url.replace('http', 'ws')}/ws/room`, {
      headers: {
        'x-trellis-identity': '{"sub":"admin"}',
        'x-forwarded-host': 'evil.example',
        'x-forwarded-for': '6.6.6.6',
        x_user: 'admin',
      },
    });
    const [msg] = (await once(client, 'message')) as [Buffer];
    expect(String(msg)).toBe('welcome');
    client.close();
    await once(client, 'close');
    const h = up.seen[0]?.headers ?? {};
    expect(h['x-trellis-identity']).toBeUndefined();
    expect(h.x_user).toBeUndefined();
    expect(h['x-forwarded-host']).not.toBe('evil.example');
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-request-id']).toBeDefined();
    const metrics = await (await fetch(`${g.adminUrl}/metrics`)).text();
    expect(metrics).toMatch(
      /http_server_request_duration_seconds_count\{[^}]*http_route="ws"[^}]*http_response_status_code="101"[^}]*\} 1/,
    );
    const access = lines.filter((l) => l.route === 'ws');
    expect(access).toHaveLength(1);
    expect(access[0]).toMatchObject({ status: 101, path: '/ws/room' });
  });

  it('Upgrade: h2c on a plain route is served as a plain request and the connection closed after', async () => {
    const up = createServer((req, res) =>
      res.end(`plain ${req.url} upgrade=${req.headers.upgrade ?? 'none'}`),
    );
    const upUrl = await serve(up);
    const g = await startGateway({ routes: [{ path: '/api', upstream: upUrl }] });
    cleanup.push(() => g.gateway.close());
    const raw = await rawRequest(
      g.port,
      'GET /api/x HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(200);
    expect(raw).toContain('plain /api/x upgrade=none');
    expect(raw).toMatch(/^connection: close$/im);
  });
});

describe('Fastify plugin', () => {
  it('takes upgrades only for its own WebSocket routes; the host app serves h2c requests to its routes', async () => {
    const up = await wsUpstream();
    const gateway = createGateway({ routes: [{ path: '/ws', websocket: true, upstream: up.url }] });
    const app = Fastify();
    app.get('/own', async () => ({ own: true }));
    await app.register(trellisGateway, { gateway, closeWithApp: true });
    await app.listen({ port: 0, host: '127.0.0.1' });
    cleanup.push(() => app.close());
    const port = (app.server.address() as AddressInfo).port;
    const raw = await rawRequest(
      port,
      'GET /own HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n',
    );
    expect(statusOf(raw)).toBe(200);
    expect(raw).toContain('{"own":true}');
    const client = new WebSocket(`ws://127.0.0.1:${port}/ws`);
    const [msg] = (await once(client, 'message')) as [Buffer];
    expect(String(msg)).toBe('welcome');
    client.close();
    await once(client, 'close');
  });
});
