/** Backpressure both ways, aborts, body timeouts and the streaming (SSE) opt-out. */
import { request } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, startUpstream } from './helpers.js';

const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MB = 1024 * 1024;

describe('streaming', () => {
  it('a client that stops reading stalls the upstream (backpressure); all bytes arrive once it reads', async () => {
    const total = 64 * MB;
    let written = 0;
    let upstreamClosedEarly = false;
    const up = await startUpstream();
    cleanup.push(() => up.close());
    up.server.removeAllListeners('request');
    up.server.on('request', (_req, res) => {
      const chunk = Buffer.alloc(64 * 1024, 97);
      res.writeHead(200, { 'content-length': String(total) });
      res.on('close', () => {
        if (!res.writableFinished) upstreamClosedEarly = true;
      });
      const pump = () => {
        while (written < total) {
          written += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      pump();
    });
    const g = await startGateway({ routes: [{ path: '/', upstream: { urls: [up.url] } }] });
    cleanup.push(() => g.gateway.close());
    let received = 0;
    const done = new Promise<void>((resolve, reject) => {
      const req = request(`${g.url}/big`, (res) => {
        res.pause();
        setTimeout(() => {
          // Paused for 400 ms: the upstream must have been held back far below 64 MB.
          expect(written).toBeLessThan(24 * MB);
          res.on('data', (c: Buffer) => {
            received += c.length;
          });
          res.on('end', () => resolve());
          res.resume();
        }, 400);
      });
      req.on('error', reject);
      req.end();
    });
    await done;
    expect(received).toBe(total);
    expect(upstreamClosedEarly).toBe(false);
  });

  it('a client that goes away mid-download aborts the upstream response', async () => {
    let upstreamAborted: (v: boolean) => void = () => {};
    const aborted = new Promise<boolean>((r) => {
      upstreamAborted = r;
    });
    const up = await startUpstream();
    cleanup.push(() => up.close());
    up.server.removeAllListeners('request');
    up.server.on('request', (_req, res) => {
      res.writeHead(200);
      const timer = setInterval(() => res.write('tick\n'), 10);
      res.on('close', () => {
        clearInterval(timer);
        upstreamAborted(!res.writableFinished);
      });
    });
    const g = await startGateway({
      routes: [{ path: '/', upstream: { urls: [up.url] }, timeouts: { streaming: true } }],
    });
    cleanup.push(() => g.gateway.close());
    await new Promise<void>((resolve) => {
      const req = request(`${g.url}/stream`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => {});
      req.end();
    });
    expect(await aborted).toBe(true);
  });

  it('timeouts.bodyMs cuts a stalled response; timeouts.streaming keeps an SSE stream open', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    up.server.removeAllListeners('request');
    up.server.on('request', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: 1\n\n');
      // undici's body timer has ~1 s resolution (fast timers): stall well past it.
      setTimeout(() => res.end('data: 2\n\n'), 1_600);
    });
    const g = await startGateway({
      routes: [
        { path: '/cut', upstream: { urls: [up.url] }, timeouts: { bodyMs: 100 } },
        { path: '/sse', upstream: { urls: [up.url] }, timeouts: { bodyMs: 100, streaming: true } },
      ],
    });
    cleanup.push(() => g.gateway.close());
    const read = (path: string) =>
      new Promise<string>((resolve) => {
        let body = '';
        const req = request(`${g.url}${path}`, (res) => {
          res.on('data', (c: Buffer) => {
            body += c.toString();
          });
          res.on('end', () => resolve(`end:${body}`));
          res.on('aborted', () => resolve(`aborted:${body}`));
          res.on('error', () => resolve(`aborted:${body}`));
        });
        req.on('error', () => resolve(`aborted:${body}`));
        req.end();
      });
    const [cut, sse] = await Promise.all([read('/cut'), read('/sse')]);
    expect(cut).toBe('aborted:data: 1\n\n');
    expect(sse).toBe('end:data: 1\n\ndata: 2\n\n');
    await sleep(10);
  });
});
