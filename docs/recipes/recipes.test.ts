/**
 * The recipes' promises, checked by running the recipes' own code (issue 17: the Express
 * breaker recipe promised "503 immediately with Retry-After" and took 5 s per request).
 *
 * Each recipe's ```ts block is written to a module as it stands, except that its
 * `@trellis/core` and `@trellis/resilience` imports point at test/core.ts and test/resilience.ts
 * (the same exports, with one shared test clock injected), then imported: a real Express (or Fastify) app on a
 * free port, talking to a real FX server on loopback. "At once" is checked on fake time: once
 * the breaker is open, requests are answered while the test clock stands still (a handler that
 * waited on any timer would never answer) and without one more call reaching FX.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { freePort } from '../../testing/engines.js';
import { tsBlocks } from '../../testing/markdown.js';
import { clock } from './test/clock.js';

const here = import.meta.dirname;
const tmp = join(here, '..', '..', '.tmp', 'recipes');

/** The recipe's one ```ts block, imports pointed at the clocked modules. */
function recipeModule(file: string, name: string): string {
  const blocks = tsBlocks(join(here, file));
  expect(blocks).toHaveLength(1);
  let code = blocks[0]!.code;
  const clocked: [string, string][] = [
    ["'@trellis/core'", 'core.ts'],
    ["'@trellis/resilience'", 'resilience.ts'],
  ];
  for (const [spec, support] of clocked) {
    code = code.replaceAll(`from ${spec}`, `from ${JSON.stringify(join(here, 'test', support))}`);
  }
  expect(code).not.toMatch(/from '@trellis\/(core|resilience)'/);
  mkdirSync(tmp, { recursive: true });
  const out = join(tmp, name);
  writeFileSync(out, `${code}\nexport {};\n`);
  return out;
}

interface Answer {
  status: number;
  retryAfter: string | null;
  contentType: string | null;
  body: { code?: string; status?: number; sku?: string; usd?: number };
}

async function get(url: string): Promise<Answer> {
  const res = await fetch(url);
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    contentType: res.headers.get('content-type'),
    body: (await res.json()) as Answer['body'],
  };
}

/** A request while the test clock moves on in small steps (backoffs and timeouts run on it). */
async function driven(url: string): Promise<Answer> {
  let done = false;
  const p = get(url).finally(() => {
    done = true;
  });
  while (!done) {
    await new Promise((r) => setTimeout(r, 5));
    if (!done) await clock.advance(25);
  }
  return p;
}

/** A request while the test clock stands still: it must be answered without any timer. */
async function frozen(url: string): Promise<Answer> {
  const before = clock.now();
  const pending = clock.pendingTimers;
  const answer = await Promise.race([
    get(url),
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error('the handler waited on a timer (clock frozen)')), 10_000),
    ),
  ]);
  expect(clock.now()).toBe(before);
  expect(clock.pendingTimers).toBe(pending);
  return answer;
}

describe('docs/recipes/express-breaker.md', () => {
  type Mode = 'ok' | '503' | 'reset' | 'hang';
  let mode: Mode = '503';
  let hits = 0;
  let fx: Server;
  let base: string;
  const hung = new Set<import('node:http').ServerResponse>();
  let listenersBefore: Set<unknown>;

  beforeAll(async () => {
    fx = createServer((req, res) => {
      hits++;
      if (mode === 'reset') {
        req.socket.destroy();
        return;
      }
      if (mode === 'hang') {
        hung.add(res);
        return;
      }
      if (mode === '503') {
        res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":"down"}');
        return;
      }
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ base: 'EUR', rates: { USD: 1.1 } }));
    });
    fx.listen(0, '127.0.0.1');
    await new Promise((r) => fx.once('listening', r));
    const port = await freePort();
    process.env.FX_URL = `http://127.0.0.1:${(fx.address() as AddressInfo).port}`;
    process.env.PORT = String(port);
    base = `http://127.0.0.1:${port}`;
    listenersBefore = new Set(process.listeners('SIGTERM'));
    await import(recipeModule('express-breaker.md', 'express-breaker.ts'));
    for (let i = 0; i < 200; i++) {
      try {
        await fetch(`${base}/nothing`);
        break;
      } catch {
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  });

  afterAll(async () => {
    for (const res of hung) res.destroy();
    for (const l of process.listeners('SIGTERM')) {
      if (!listenersBefore.has(l)) {
        process.removeListener('SIGTERM', l);
        (l as () => void)(); // the recipe's own SIGTERM handler: closes its server and client
      }
    }
    fx.closeAllConnections();
    fx.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('FX answering 503: 502 problem+json while closed, then 503 at once with Retry-After, FX untouched', async () => {
    mode = '503';
    const answers: Answer[] = [];
    // 2 attempts per request, the breaker opens at 10 calls of which half failed: 5 requests.
    for (let i = 0; i < 5; i++) answers.push(await driven(`${base}/prices/a`));
    expect(answers.map((a) => a.status)).toEqual([502, 502, 502, 502, 502]);
    expect(answers[0]!.contentType).toMatch(/^application\/problem\+json/);
    expect(hits).toBe(10);
    for (let i = 0; i < 20; i++) {
      const a = await frozen(`${base}/prices/a`);
      expect(a.status).toBe(503);
      expect(a.body.code).toBe('TRELLIS_CIRCUIT_OPEN');
      expect(Number(a.retryAfter)).toBeGreaterThanOrEqual(1);
      expect(Number(a.retryAfter)).toBeLessThanOrEqual(5);
    }
    expect(hits).toBe(10); // not one more call reached FX
  });

  it('after halfOpenAfterMs one trial goes through; FX healthy again closes the breaker', async () => {
    mode = 'ok';
    await clock.advance(5_000);
    const a = await driven(`${base}/prices/b`);
    expect(a.status).toBe(200);
    expect(a.body).toEqual({ sku: 'b', usd: 11 });
    expect(hits).toBe(11);
  });

  it('FX resetting connections (ConnectError): 502, then 503 at once once the breaker opens', async () => {
    mode = 'reset';
    const before = hits;
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await driven(`${base}/prices/c`)).status);
    expect(statuses).toEqual([502, 502, 502, 502, 502]);
    const opened = hits;
    expect(opened - before).toBe(10);
    const a = await frozen(`${base}/prices/c`);
    expect(a.status).toBe(503);
    expect(a.retryAfter).not.toBeNull();
    expect(hits).toBe(opened);
  });

  it('FX too slow (TimeoutError of timeout(300)): 504 problem+json, not 500', async () => {
    mode = 'ok';
    await clock.advance(5_000);
    expect((await driven(`${base}/prices/d`)).status).toBe(200); // closes the breaker again
    mode = 'hang';
    const a = await driven(`${base}/prices/d`);
    expect(a.status).toBe(504);
    expect(a.body.code).toBe('TRELLIS_TIMEOUT');
  });
});

describe('docs/recipes/fastify-health-metrics.md', () => {
  let base: string;
  let before: Map<string, Set<unknown>>;
  const exits: unknown[] = [];

  beforeAll(async () => {
    const port = await freePort();
    process.env.PORT = String(port);
    base = `http://127.0.0.1:${port}`;
    before = new Map(
      ['SIGTERM', 'SIGINT'].map((s) => [s, new Set<unknown>(process.listeners(s as 'SIGTERM'))]),
    );
    // The recipe's shutdown ends with process.exit: record it instead of ending the test run.
    vi.spyOn(process, 'exit').mockImplementation(((code?: number) => {
      exits.push(code);
    }) as never);
    await import(recipeModule('fastify-health-metrics.md', 'fastify-health-metrics.ts'));
  });

  afterAll(() => {
    vi.restoreAllMocks();
    for (const [signal, old] of before) {
      for (const l of process.listeners(signal as 'SIGTERM')) {
        if (!old.has(l)) process.removeListener(signal, l);
      }
    }
  });

  it('serves the table: live, ready, full health, and per-route metrics', async () => {
    const live = await fetch(`${base}/health/live`);
    expect(live.status).toBe(200);
    expect(live.headers.get('content-type')).toMatch(/^application\/health\+json/);
    let ready = await fetch(`${base}/health/ready`);
    for (let i = 0; i < 50 && ready.status !== 200; i++) {
      await clock.advance(100);
      ready = await fetch(`${base}/health/ready`);
    }
    expect(ready.status).toBe(200);
    const full = (await (await fetch(`${base}/health`)).json()) as { checks?: object };
    expect(JSON.stringify(full)).toContain('database');
    const stock = await fetch(`${base}/stock/sku-9`);
    expect(await stock.json()).toEqual({ sku: 'sku-9', available: 4 });
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toMatch(
      /http_server_request_duration_seconds_bucket\{[^}]*http_route="\/stock\/:sku"/,
    );
    expect(metrics).toContain('process_cpu_user_seconds_total');
  });

  it('on SIGTERM: readiness fails at once, the drain delay runs on the clock, then the server stops and the process exits 0', async () => {
    process.emit('SIGTERM');
    const ready = await fetch(`${base}/health/ready`);
    expect(ready.status).toBe(503);
    expect((await fetch(`${base}/health/live`)).status).toBe(200);
    expect(exits).toEqual([]);
    await clock.advance(4_999);
    expect((await fetch(`${base}/stock/a`)).status).toBe(200); // still serving while draining
    await clock.advance(1);
    for (let i = 0; i < 200 && exits.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      await clock.advance(100);
    }
    expect(exits).toEqual([0]);
    await expect(fetch(`${base}/stock/a`)).rejects.toThrow();
  });
});
