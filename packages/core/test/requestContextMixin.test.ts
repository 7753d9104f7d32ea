// The pino mixin with real pino, a real Express app and a real OpenTelemetry SDK: every line
// logged while serving a request carries its request id, trace id and span id.
import { once } from 'node:events';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import express from 'express';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trellis } from '../src/express.js';
import { requestContextMixin } from '../src/index.js';
import { installTracing, TRACE_ID, TRACEPARENT, type TracingHarness } from './tracingHarness.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, logger: pino({ mixin: requestContextMixin }, stream) };
}

function get(url: string, headers: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('requestContextMixin', () => {
  let harness: TracingHarness;
  beforeAll(() => {
    harness = installTracing();
  });
  afterAll(async () => {
    await harness.uninstall();
  });

  it('adds requestId, traceId and spanId to pino lines logged while serving a request', async () => {
    const { lines, logger } = capture();
    const app = express();
    app.use(trellis());
    app.get('/orders/:id', async (_req, res) => {
      await new Promise((r) => setTimeout(r, 1)); // across an await, too
      logger.info('order read');
      res.send('ok');
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    expect(
      await get(`${base}/orders/7`, { 'x-request-id': 'req-42', traceparent: TRACEPARENT }),
    ).toBe(200);
    logger.info('outside');
    server.close();
    const [inside, outside] = lines;
    expect(inside).toMatchObject({ msg: 'order read', requestId: 'req-42', traceId: TRACE_ID });
    expect(inside?.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(inside?.spanId).toBe(harness.exporter.getFinishedSpans()[0]?.spanContext().spanId);
    // Outside a request nothing is added, never an empty value.
    expect(outside).not.toHaveProperty('requestId');
    expect(outside).not.toHaveProperty('traceId');
    expect(outside).not.toHaveProperty('spanId');
  });

  it('works with a plain console-style logger by spreading its result', async () => {
    const out: string[] = [];
    const log = (msg: string) => out.push(JSON.stringify({ ...requestContextMixin(), msg }));
    const app = express();
    app.use(trellis({ tracing: false }));
    app.get('/', (_req, res) => {
      log('hello');
      res.send('ok');
    });
    const server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
    await get(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`, {
      'x-request-id': 'r-1',
    });
    server.close();
    expect(JSON.parse(out[0] ?? '{}')).toEqual({ requestId: 'r-1', msg: 'hello' });
  });
});
