import { once } from 'node:events';
import { Agent, createServer, request, type Server, type ServerResponse } from 'node:http';
import {
  createServer as createHttpsServer,
  Agent as HttpsAgent,
  request as httpsRequest,
} from 'node:https';
import { type AddressInfo, connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { hasEngine, selfSignedCert } from '../../../testing/engines.js';
import { createHealth, createObservabilityHandler, type Health } from '../src/index.js';

interface Result {
  status?: number;
  connection?: string;
  error?: string;
}

function post(port: number, agent: Agent, path = '/work'): Promise<Result> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent }, (res) => {
      res.resume();
      res.on('end', () =>
        resolve({ status: res.statusCode, connection: res.headers.connection as string }),
      );
      res.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? err.message }));
    req.end('x');
  });
}

let server: Server | undefined;
let health: Health | undefined;
const agents: Agent[] = [];

afterEach(async () => {
  health?.close();
  for (const a of agents.splice(0)) a.destroy();
  if (server?.listening) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
});

async function startServer(
  workMs: number,
  h: Health,
): Promise<{ port: number; accepted: () => number }> {
  let accepted = 0;
  const observe = createObservabilityHandler({ health: h });
  server = createServer((req, res) => {
    if (observe(req, res)) return;
    accepted++;
    req.resume();
    setTimeout(() => res.end('done'), workMs);
  });
  h.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, accepted: () => accepted };
}

describe('graceful shutdown of a real server', () => {
  it('under load, every accepted request gets its full response (no reset)', async () => {
    // The drain delay must outlast the `notReady` fetch below even on a loaded machine: once it
    // ends, idle keep-alive sockets close and that fetch could race the close ("other side
    // closed"), which is not what this test is about.
    health = createHealth({ signals: false, drainDelayMs: 600, shutdownTimeoutMs: 5_000 });
    const { port, accepted } = await startServer(15, health);
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    agents.push(agent);

    let ok = 0;
    let okAfterShutdownStarted = 0;
    const failures: Result[] = [];
    let shuttingDown = false;
    let refused = false;
    const worker = async () => {
      while (!refused) {
        const r = await post(port, agent);
        if (r.status === 200) {
          ok++;
          if (shuttingDown) okAfterShutdownStarted++;
        } else {
          failures.push(r);
          // Once the server has stopped accepting, new requests are refused: stop.
          if (r.error === 'ECONNREFUSED' || r.error === 'ECONNRESET') refused = true;
        }
        if (health?.state === 'stopped') refused = true;
      }
    };
    const workers = Array.from({ length: 16 }, worker);
    await new Promise((r) => setTimeout(r, 100));
    shuttingDown = true;
    const ready = await fetch(`http://127.0.0.1:${port}/health/ready`);
    expect(ready.status).toBe(200);
    const done = health.shutdown();
    const notReady = await fetch(`http://127.0.0.1:${port}/health/ready`);
    expect(notReady.status).toBe(503);
    await done;
    await Promise.all(workers);

    expect(health.state).toBe('stopped');
    expect(server?.listening).toBe(false);
    // Every request the server accepted was answered in full...
    expect(ok).toBe(accepted());
    // ...including plenty served during the drain delay and the in-flight wait.
    expect(okAfterShutdownStarted).toBeGreaterThan(0);
    // Failures may only be requests the server never accepted.
    for (const f of failures) expect(f.status).toBeUndefined();
  });

  it('in-flight responses are told Connection: close; the server waits for them', async () => {
    health = createHealth({ signals: false, drainDelayMs: 0, shutdownTimeoutMs: 5_000 });
    const { port } = await startServer(200, health);
    const agent = new Agent({ keepAlive: true });
    agents.push(agent);
    const inFlight = post(port, agent);
    await new Promise((r) => setTimeout(r, 50));
    expect(health.inFlight).toBe(1);
    const done = health.shutdown();
    const r = await inFlight;
    await done;
    expect(r).toEqual({ status: 200, connection: 'close' });
    expect(health.inFlight).toBe(0);
  });

  it('drops connections still busy at the in-flight deadline and still runs cleanup', async () => {
    health = createHealth({ signals: false, drainDelayMs: 0, shutdownTimeoutMs: 50 });
    const cleaned: string[] = [];
    health.addCleanup(() => {
      cleaned.push('db');
    });
    const { port } = await startServer(10_000, health);
    const agent = new Agent({ keepAlive: true });
    agents.push(agent);
    const stuck = post(port, agent);
    await new Promise((r) => setTimeout(r, 30));
    await health.shutdown();
    expect((await stuck).error).toBeDefined();
    expect(cleaned).toEqual(['db']);
  });
});

describe('graceful shutdown: connections the tracker follows', () => {
  it("finishes a pipelined connection's in-flight response with Connection: close, and does not wait for the one Node drops", async () => {
    const warnings: unknown[] = [];
    const noop = () => {};
    health = createHealth({
      signals: false,
      drainDelayMs: 0,
      shutdownTimeoutMs: 60_000,
      logger: {
        debug: noop,
        info: noop,
        error: noop,
        warn: (...args: unknown[]) => warnings.push(args),
      },
    });
    // The app answers only when the test says so: no timers to race.
    const pending = new Map<string, ServerResponse>();
    server = createServer((req, res) => {
      pending.set(req.url ?? '', res);
    });
    health.attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1');
    let received = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => {
      received += d;
    });
    // Two requests in one write: Node hands both to the app at once, and queues the second
    // response behind the first on the one connection.
    socket.write('GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n');
    while (pending.size < 2) await new Promise((r) => setImmediate(r));
    expect(health.inFlight).toBe(1);
    let stopped = false;
    const done = health.shutdown().then(() => {
      stopped = true;
    });
    // Past step 4 (the server stopped listening), and some turns later still waiting for /first.
    while (server.listening) await new Promise((r) => setImmediate(r));
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    pending.get('/first')?.end('done /first');
    await done;
    await once(socket, 'close');
    // The first response went out in full, telling the client the connection is going away;
    // Node then closed the connection with the queued response unsent (a known limit with
    // pipelining, see the core README), and the sequence did not wait for it.
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*connection: close[\s\S]*done \/first$/i);
    expect(received.match(/HTTP\/1\.1/g)).toHaveLength(1);
    // Done without reaching the in-flight deadline (which would log a warning).
    expect(warnings).toEqual([]);
    pending.get('/second')?.end('too late'); // goes nowhere, and does not throw
  });

  it('closes keep-alive connections opened before the shutdown once they are idle', async () => {
    health = createHealth({ signals: false, drainDelayMs: 100, shutdownTimeoutMs: 5_000 });
    const { port } = await startServer(0, health);
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    agents.push(agent);
    expect(await post(port, agent)).toEqual({ status: 200, connection: 'keep-alive' });
    const done = health.shutdown();
    // During the drain delay the server still serves as before, on the same connection.
    expect(await post(port, agent)).toEqual({ status: 200, connection: 'keep-alive' });
    await done;
    const open = await new Promise<number>((resolve, reject) =>
      server?.getConnections((err, n) => (err ? reject(err) : resolve(n))),
    );
    expect(open).toBe(0);
  });

  describe.skipIf(!hasEngine('openssl'))('over HTTPS', () => {
    it('follows TLS connections: waits for the in-flight response, tells it Connection: close', async () => {
      health = createHealth({ signals: false, drainDelayMs: 0, shutdownTimeoutMs: 5_000 });
      const { key, cert } = selfSignedCert();
      const tls = createHttpsServer({ key, cert }, (req, res) => {
        req.resume();
        setTimeout(() => res.end('secure'), 150);
      });
      server = tls;
      health.attach(tls);
      tls.listen(0, '127.0.0.1');
      await once(tls, 'listening');
      const agent = new HttpsAgent({ keepAlive: true, ca: cert });
      const inFlight = new Promise<Result & { body: string }>((resolve, reject) => {
        const req = httpsRequest(
          { host: '127.0.0.1', port: (tls.address() as AddressInfo).port, path: '/', agent },
          (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (d: string) => {
              body += d;
            });
            res.on('end', () =>
              resolve({ status: res.statusCode, connection: res.headers.connection, body }),
            );
          },
        );
        req.on('error', reject);
        req.end();
      });
      await new Promise((r) => setTimeout(r, 60));
      expect(health.inFlight).toBe(1);
      await health.shutdown();
      expect(await inFlight).toEqual({ status: 200, connection: 'close', body: 'secure' });
      expect(tls.listening).toBe(false);
      agent.destroy();
    });
  });
});

describe('signals and leaks', () => {
  it('SIGTERM runs the sequence and exits 0 (a real child process)', async () => {
    const { spawn } = await import('node:child_process');
    const { join } = await import('node:path');
    const root = join(import.meta.dirname, '..', '..', '..');
    const script = `
      import { createServer } from 'node:http';
      import { createHealth } from '@trellis/core';
      const health = createHealth({ drainDelayMs: 20 });
      health.addCleanup(() => console.log('cleanup'));
      const server = createServer((req, res) => res.end('ok'));
      health.attach(server);
      server.listen(0, '127.0.0.1', () => console.log('listening'));
    `;
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', script],
      {
        cwd: root,
        env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'packages/core/tsconfig.json') },
      },
    );
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening') && !child.killed) child.kill('SIGTERM');
    });
    const [code] = (await once(child, 'exit')) as [number | null];
    expect(out).toBe('listening\ncleanup\n');
    expect(code).toBe(0);
  });

  it('close() leaves no listeners on the server or the process', async () => {
    const sigterm = process.listenerCount('SIGTERM');
    const h = createHealth();
    const s = createServer();
    const before = s.listenerCount('connection');
    const requestListeners = s.listenerCount('request');
    h.attach(s);
    // Until a shutdown starts, the tracker follows connections, not requests.
    expect(s.listenerCount('connection')).toBe(before + 1);
    expect(s.listenerCount('request')).toBe(requestListeners);
    h.close();
    expect(s.listenerCount('connection')).toBe(before);
    expect(s.listenerCount('request')).toBe(requestListeners);
    expect(process.listenerCount('SIGTERM')).toBe(sigterm);
  });
});
