import { once } from 'node:events';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
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
    health = createHealth({ signals: false, drainDelayMs: 100, shutdownTimeoutMs: 5_000 });
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
    const before = s.listenerCount('request');
    h.attach(s);
    expect(s.listenerCount('request')).toBe(before + 1);
    h.close();
    expect(s.listenerCount('request')).toBe(before);
    expect(process.listenerCount('SIGTERM')).toBe(sigterm);
  });
});
