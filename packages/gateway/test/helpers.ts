/** Real servers and raw sockets for the gateway tests. */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import {
  createGateway,
  type Gateway,
  type GatewayConfigInput,
  type GatewayOptions,
} from '../src/index.js';

/** One request the upstream saw. */
export interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** A real upstream on port 0 that records what it receives. */
export interface Upstream {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly seen: Seen[];
  close(): Promise<void>;
}

export type UpstreamHandler = (req: IncomingMessage, res: ServerResponse, body: string) => void;

const echo: UpstreamHandler = (req, res, body) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ url: req.url, method: req.method, body }));
};

export async function startUpstream(handler: UpstreamHandler = echo): Promise<Upstream> {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      handler(req, res, body);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A gateway listening on port 0. */
export async function startGateway(
  config: GatewayConfigInput,
  options?: GatewayOptions,
): Promise<{ gateway: Gateway; url: string; port: number; adminUrl: string }> {
  const gateway = createGateway(config, options);
  const { port, adminPort } = await gateway.listen(0, '127.0.0.1');
  return {
    gateway,
    url: `http://127.0.0.1:${port}`,
    port,
    adminUrl: `http://127.0.0.1:${adminPort ?? 0}`,
  };
}

/** Sends raw bytes on a fresh socket and returns everything the server wrote until it closed (or `waitMs`). */
export async function rawRequest(
  port: number,
  bytes: string | Buffer,
  waitMs = 2_000,
): Promise<string> {
  const socket = connect(port, '127.0.0.1');
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(bytes);
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      socket.destroy();
      resolve();
    }, waitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    socket.on('error', () => {});
  });
  return Buffer.concat(chunks).toString('latin1');
}

/** The status code of the first response in a raw HTTP answer (0 when none). */
export function statusOf(raw: string): number {
  const m = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return m ? Number(m[1]) : 0;
}

const TRACKED = ['TCPSocketWrap', 'TCPServerWrap', 'Timeout'] as const;

/** Counts of the handle kinds a gateway could leak. */
export function handleCounts(): Record<(typeof TRACKED)[number], number> {
  const out = { TCPSocketWrap: 0, TCPServerWrap: 0, Timeout: 0 };
  for (const r of process.getActiveResourcesInfo()) {
    if (r in out) out[r as keyof typeof out]++;
  }
  return out;
}

/**
 * Waits (briefly, polling) until no more sockets, servers or timers are open than in `before`;
 * returns the counts it ended with. Peers need a moment to see the FIN of closed connections.
 */
export async function settledHandles(
  before: ReturnType<typeof handleCounts>,
): Promise<ReturnType<typeof handleCounts>> {
  let now = handleCounts();
  for (let i = 0; i < 40; i++) {
    if (TRACKED.every((k) => now[k] <= before[k])) return now;
    await new Promise((r) => setTimeout(r, 25));
    now = handleCounts();
  }
  return now;
}

/** A one-shot signal for tests: `fire()` resolves `promise` (hold an upstream, wait for arrival). */
export function signal(): { promise: Promise<void>; fire: () => void } {
  let fire: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    fire = resolve;
  });
  return { promise, fire };
}
