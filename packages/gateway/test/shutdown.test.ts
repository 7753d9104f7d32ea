/**
 * `gateway.close()` on kept-alive connections, on real sockets: a request arriving on an open
 * connection after close() started gets 503 + Retry-After + `Connection: close`, and a proxied
 * response that finishes during the shutdown also ends with `Connection: close`.
 */
import { once } from 'node:events';
import { connect, type Socket } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { startGateway, startUpstream, type Upstream } from './helpers.js';

let upstream: Upstream | undefined;
afterEach(async () => {
  await upstream?.close();
  upstream = undefined;
});

async function open(port: number): Promise<{ socket: Socket; text: () => string }> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  let out = '';
  socket.on('data', (d: Buffer) => {
    out += d.toString('latin1');
  });
  socket.on('error', () => {});
  return { socket, text: () => out };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
  expect(check()).toBe(true);
}

it('close(): new requests on kept-alive connections get 503 + Connection: close; in-flight ones finish with Connection: close', async () => {
  const held: (() => void)[] = [];
  upstream = await startUpstream((_req, res) => {
    held.push(() => res.end('slow'));
  });
  const { gateway, port } = await startGateway(
    { routes: [{ path: '/api', upstream: { urls: [upstream.url] } }] },
    { tracing: false },
  );
  // B: a request in flight (keeps the gateway draining). A: a request still being received.
  const b = await open(port);
  b.socket.write('GET /api/slow HTTP/1.1\r\nhost: gw\r\n\r\n');
  await until(() => held.length === 1);
  const a = await open(port);
  a.socket.write('GET /api/other HTTP/1.1\r\nhost: gw\r\n');
  await new Promise((r) => setTimeout(r, 20)); // let the gateway read the partial head

  const closed = gateway.close();
  a.socket.write('\r\n'); // the request completes after close() began
  await until(() => a.text().includes('\r\n\r\n{'));
  const answer = a.text().toLowerCase();
  expect(answer.startsWith('http/1.1 503')).toBe(true);
  expect(answer).toContain('connection: close');
  expect(answer).toContain('retry-after: 1');
  expect(answer).toContain('trellis_shutting_down');
  if (!a.socket.closed) await once(a.socket, 'close');
  expect(held).toHaveLength(1); // never reached the upstream

  held[0]?.();
  await until(() => b.text().endsWith('slow'));
  expect(b.text().startsWith('HTTP/1.1 200')).toBe(true);
  expect(b.text().toLowerCase()).toContain('connection: close');
  await closed;
  if (!b.socket.closed) await once(b.socket, 'close');
});
