// Health and shutdown under odd input (issue 18 items 1, 2 and 6), on real servers.
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  createHealth,
  createObservabilityHandler,
  type Health,
  MAX_DELAY_MS,
} from '../src/index.js';

let server: Server | undefined;
let health: Health | undefined;

afterEach(async () => {
  health?.close();
  health = undefined;
  if (server?.listening) {
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }
  server = undefined;
});

async function listen(h: Health, handler: () => string = () => 'ok'): Promise<string> {
  const observe = createObservabilityHandler({ health: h });
  server = createServer((req, res) => {
    if (observe(req, res)) return;
    req.resume();
    res.end(handler());
  });
  h.attach(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

describe('a check that throws something that is not an Error', () => {
  const odd: [string, () => unknown][] = [
    ['Object.create(null)', () => Object.create(null)],
    ['a symbol', () => Symbol('s')],
    ['undefined', () => undefined],
    [
      'a proxy whose every trap throws',
      () =>
        new Proxy(
          {},
          {
            get() {
              throw new Error('trap');
            },
            getPrototypeOf() {
              throw new Error('trap');
            },
          },
        ),
    ],
  ];
  for (const [name, make] of odd) {
    it(`${name}: readiness fails with a safe description, then recovers`, async () => {
      let broken = true;
      health = createHealth({
        signals: false,
        checks: {
          db: {
            check: () => {
              if (broken) throw make();
              return true;
            },
          },
        },
      });
      const base = await listen(health);
      const first = await fetch(`${base}/health/ready`);
      expect(first.status).toBe(503);
      const body = (await first.json()) as { status: string; checks: Record<string, unknown[]> };
      expect(body.status).toBe('fail');
      const outcome = body.checks['db:responseTime']?.[0] as { output: string };
      expect(typeof outcome.output).toBe('string');
      broken = false;
      const second = await fetch(`${base}/health/ready`);
      expect(second.status).toBe(200);
      expect(((await second.json()) as { status: string }).status).toBe('pass');
    });
  }
});

describe('durations that reach a timer', () => {
  it('refuses shutdown, drain, hook and check durations a timer cannot hold', () => {
    for (const options of [
      { shutdownTimeoutMs: 2 ** 31 },
      { drainDelayMs: 2 ** 31 },
      { hookTimeoutMs: Number.POSITIVE_INFINITY },
      { shutdownTimeoutMs: Number.NaN },
      { checks: { a: { check: () => true, timeoutMs: 2 ** 32 } } },
      { checks: { a: { check: () => true, cacheMs: 1e12 } } },
    ]) {
      expect(() => createHealth({ signals: false, ...options })).toThrow(ConfigError);
    }
    expect(() => createHealth({ signals: false, shutdownTimeoutMs: 2 ** 31 })).toThrow(
      /shutdownTimeoutMs: must be at most 2147483647 ms/,
    );
  });

  it('property: any number is accepted exactly when a timer can hold it', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double(),
          fc.integer({ min: MAX_DELAY_MS - 5, max: MAX_DELAY_MS + 5 }),
          fc.constantFrom(0, -0, -1, 2 ** 31, 2 ** 53, Number.MAX_VALUE),
        ),
        (ms) => {
          const fits = Number.isFinite(ms) && ms >= 0 && ms <= MAX_DELAY_MS;
          let accepted: boolean;
          try {
            createHealth({ signals: false, shutdownTimeoutMs: ms, drainDelayMs: ms }).close();
            accepted = true;
          } catch (err) {
            expect(err).toBeInstanceOf(ConfigError);
            accepted = false;
          }
          expect(accepted).toBe(fits);
        },
      ),
      { seed: 18, numRuns: 300 },
    );
  });

  it('shutdownTimeoutMs at the largest value waits for in-flight requests (does not drop them at once)', async () => {
    health = createHealth({ signals: false, drainDelayMs: 0, shutdownTimeoutMs: MAX_DELAY_MS });
    let release: (() => void) | undefined;
    const observe = createObservabilityHandler({ health });
    server = createServer((req, res) => {
      if (observe(req, res)) return;
      release = () => res.end('done');
    });
    health.attach(server);
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    const answer = fetch(`http://127.0.0.1:${port}/work`).then((r) => r.text());
    while (release === undefined) await new Promise((r) => setTimeout(r, 5));
    const done = health.shutdown();
    await new Promise((r) => setTimeout(r, 30));
    expect(health.inFlight).toBe(1);
    release();
    expect(await answer).toBe('done');
    await done;
  });
});

describe('shutdown drops what is left before the cleanup hooks', () => {
  it('a connection holding a half-sent request is never answered after cleanup ran', async () => {
    health = createHealth({ signals: false, drainDelayMs: 0, shutdownTimeoutMs: 1_000 });
    let cleanedUp = false;
    let servedAfterCleanup = false;
    health.addCleanup(() => {
      cleanedUp = true;
    });
    const base = await listen(health, () => {
      if (cleanedUp) servedAfterCleanup = true;
      return 'served';
    });
    const { port } = new URL(base);
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    const closed = new Promise<void>((resolve) => {
      socket.on('close', () => resolve());
      socket.on('error', () => undefined);
    });
    // Half a request: the request line and one header, no blank line yet.
    socket.write('GET /work HTTP/1.1\r\nHost: x\r\n');
    await new Promise((r) => setTimeout(r, 20));

    await health.shutdown();
    expect(cleanedUp).toBe(true);
    // The rest of the request arrives after the cleanup hooks ran.
    if (!socket.destroyed) socket.write('\r\n');
    await closed;
    expect(servedAfterCleanup).toBe(false);
    expect(Buffer.concat(received).toString()).not.toContain('200');
  });
});
