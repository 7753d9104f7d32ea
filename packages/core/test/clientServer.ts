// Test helper (not a test file): a real node:http server on port 0 that records requests.
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

export interface TestServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly requests: Recorded[];
  /** Resolves with the next request's record as soon as it has been read. */
  nextRequest(): Promise<Recorded>;
  connections(): Promise<number>;
  close(): Promise<void>;
}

export type Handler = (req: Recorded, res: ServerResponse) => void;

export async function startServer(handler: Handler): Promise<TestServer> {
  const requests: Recorded[] = [];
  let waiters: ((r: Recorded) => void)[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rec: Recorded = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(rec);
      const w = waiters;
      waiters = [];
      for (const fn of w) fn(rec);
      handler(rec, res);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    server,
    requests,
    nextRequest: () => new Promise((resolve) => waiters.push(resolve)),
    connections: () =>
      new Promise((resolve, reject) =>
        server.getConnections((err, n) => (err ? reject(err) : resolve(n))),
      ),
    close: async () => {
      server.closeAllConnections();
      server.close();
      await once(server, 'close');
    },
  };
}

export function json(res: ServerResponse, status: number, body: unknown, headers = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(text);
}

/** Polls until the server has no open connections (sockets close asynchronously), max ~1 s. */
export async function waitForNoConnections(server: TestServer): Promise<number> {
  let n = await server.connections();
  for (let i = 0; i < 100 && n > 0; i++) {
    await new Promise((r) => setTimeout(r, 10));
    n = await server.connections();
  }
  return n;
}
