// Streamed endpoints (sse()/ndjson()) share the client's pools and discovery watch, and record
// the client's span, metric and balancer feedback per stream open. Real servers on port 0.
import type { ServerResponse } from 'node:http';
import { context, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { hasEngine, promtoolCheck } from '../../../testing/engines.js';
import { ndjson, sse } from '../src/contract/stream.js';
import {
  type Balancer,
  createClient,
  type Instance,
  type PickOutcome,
  type Resolver,
  runWithDeadline,
  ShutdownError,
} from '../src/index.js';
import { createTestClock } from '../src/testing/TestClock.js';
import { json, startServer, type TestServer, waitForNoConnections } from './clientServer.js';
import { installTracing, type TracingHarness } from './tracingHarness.js';

const Tick = z.object({ n: z.number().int() });
const endpoints = {
  whoami: { method: 'GET', path: '/whoami', response: z.object({ name: z.string() }) },
  lines: {
    method: 'GET',
    path: '/lines/:count',
    params: z.object({ count: z.number().int() }),
    response: ndjson(Tick),
  },
  broken: { method: 'GET', path: '/broken', response: ndjson(Tick) },
  bad: { method: 'GET', path: '/bad', response: ndjson(Tick) },
  shed: { method: 'GET', path: '/shed', response: ndjson(Tick) },
  boom: { method: 'GET', path: '/boom', response: ndjson(Tick) },
  open: { method: 'GET', path: '/open', response: sse(Tick) },
  hang: { method: 'GET', path: '/hang', response: ndjson(Tick) },
  twice: { method: 'GET', path: '/twice', response: sse(Tick) },
} as const;

/** A resolver the test controls, counting watches. */
class CountingResolver implements Resolver {
  watches = 0;
  unwatches = 0;
  constructor(readonly instances: Instance[]) {}
  async resolve(): Promise<Instance[]> {
    return this.instances;
  }
  watch(_service: string, onChange: (i: Instance[]) => void): () => void {
    this.watches++;
    queueMicrotask(() => onChange(this.instances));
    return () => {
      this.unwatches++;
    };
  }
  async close(): Promise<void> {}
}

function recordingBalancer() {
  const outcomes: PickOutcome[] = [];
  let next = 0;
  const balancer: Balancer = {
    pick(instances) {
      const instance = instances[next++ % instances.length];
      if (instance === undefined) return undefined;
      return { instance, done: (o) => outcomes.push(o) };
    },
  };
  return { balancer, outcomes };
}

function sseWrite(res: ServerResponse, events: string[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const e of events) res.write(e);
}

describe('client streams: shared pools, spans, metrics and balancer feedback', () => {
  let tracing: TracingHarness;
  let server: TestServer;
  let connections = 0;
  let twiceOpens = 0;

  beforeAll(async () => {
    tracing = installTracing();
    server = await startServer((req, res) => {
      const url = req.url;
      if (url === '/whoami') return json(res, 200, { name: 'a' });
      if (url.startsWith('/lines/')) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        const n = Number(url.slice('/lines/'.length));
        for (let i = 0; i < n; i++) res.write(`${JSON.stringify({ n: i })}\n`);
        return res.end();
      }
      if (url === '/broken') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.write('{"n":1}\n', () => res.socket?.destroy());
        return;
      }
      if (url === '/bad') {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        return res.end('{"n":1}\n{"n":"two"}\n');
      }
      if (url === '/shed')
        return json(
          res,
          503,
          { type: 'about:blank', title: 'shed', status: 503, code: 'TRELLIS_SHED' },
          { 'x-trellis-shed': 'queue', 'content-type': 'application/problem+json' },
        );
      if (url === '/boom') return json(res, 500, { error: 'boom' });
      if (url === '/open') {
        // Three events, then the stream stays open until the client leaves.
        return sseWrite(res, ['data: {"n":1}\n\n', 'data: {"n":2}\n\n', 'data: {"n":3}\n\n']);
      }
      if (url === '/twice') {
        twiceOpens++;
        // One event per connection, then the server ends it: the client reconnects after 1 ms.
        sseWrite(res, [`retry: 1\nid: ${twiceOpens}\ndata: {"n":${twiceOpens}}\n\n`]);
        return res.end();
      }
      if (url === '/hang') return; // never answers
      json(res, 404, { error: 'no route' });
    });
    server.server.on('connection', () => {
      connections++;
    });
  });
  afterAll(async () => {
    await server.close();
    await tracing.uninstall();
  });

  let registry: Registry;
  let resolver: CountingResolver;
  let feedback: ReturnType<typeof recordingBalancer>;
  let client: ReturnType<typeof make>;
  const make = () =>
    createClient({
      service: 'ticks',
      resolver,
      balancer: feedback.balancer,
      endpoints,
      metrics: registry,
      // One connection per instance: a pool of its own for the streams would open a second one.
      connections: 1,
    });
  beforeEach(async () => {
    await waitForNoConnections(server);
    connections = 0;
    twiceOpens = 0;
    tracing.exporter.reset();
    server.requests.length = 0;
    registry = new Registry();
    resolver = new CountingResolver([{ id: 'a', url: server.url }]);
    feedback = recordingBalancer();
    client = make();
  });
  afterEach(() => client.close());

  const count = async (status: number | undefined, errorType?: string) => {
    const labels = [
      'http_request_method="GET"',
      'server_address="127.0.0.1"',
      `server_port="${server.port}"`,
      ...(status === undefined ? [] : [`http_response_status_code="${status}"`]),
      ...(errorType === undefined ? [] : [`error_type="${errorType}"`]),
    ].join(',');
    const text = await registry.metrics();
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`http_client_request_duration_seconds_count{${labels}} `));
    return line === undefined ? 0 : Number(line.split(' ').pop());
  };
  const spans = () => tracing.exporter.getFinishedSpans();

  it('a stream through discovery uses the same pool and watch as calls, and is counted', async () => {
    expect((await client.whoami()).name).toBe('a');
    const items: unknown[] = [];
    const parent = tracing.provider.getTracer('test').startSpan('parent');
    await context.with(trace.setSpan(context.active(), parent), async () => {
      for await (const item of client.lines({ params: { count: 3 } })) items.push(item);
    });
    parent.end();
    expect(items).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }]);
    // One discovery watch and one keep-alive connection for the call and the stream together.
    expect(resolver.watches).toBe(1);
    expect(connections).toBe(1);
    // The histogram counts both (the stream's observation is its time until it opened).
    expect(await count(200)).toBe(2);
    const streamSpan = spans().find((s) => s.name === 'GET /lines/{count}');
    expect(streamSpan?.kind).toBe(SpanKind.CLIENT);
    expect(streamSpan?.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(streamSpan?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'server.address': '127.0.0.1',
      'server.port': server.port,
      'url.full': `${server.url}/lines/3`,
      'url.template': '/lines/{count}',
      'http.response.status_code': 200,
    });
    expect(streamSpan?.status.code).toBe(SpanStatusCode.UNSET);
    const traceparent = server.requests.find((r) => r.url === '/lines/3')?.headers.traceparent;
    const ctx = streamSpan?.spanContext();
    expect(traceparent).toBe(`00-${ctx?.traceId}-${ctx?.spanId}-01`);
    expect(feedback.outcomes).toHaveLength(2);
    expect(feedback.outcomes[1]).toMatchObject({ ok: true });
    expect(feedback.outcomes[1]?.fault).toBeUndefined();
  });

  it('closing the client closes the shared pools and the watch once', async () => {
    await client.whoami();
    for await (const _ of client.lines({ params: { count: 1 } })) void _;
    expect(await server.connections()).toBe(1);
    await Promise.all([client.close(), client.close()]);
    await client.close();
    expect(resolver.watches).toBe(1);
    expect(resolver.unwatches).toBe(1);
    expect(await waitForNoConnections(server)).toBe(0);
    await expect(async () => {
      for await (const _ of client.lines({ params: { count: 1 } })) void _;
    }).rejects.toBeInstanceOf(ShutdownError);
  });

  it('a caller breaking out of the loop is nobody’s fault', async () => {
    const seen = [];
    for await (const e of client.open()) {
      seen.push(e);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([{ data: { n: 1 } }, { data: { n: 2 } }]);
    expect(feedback.outcomes).toEqual([{ ok: true, durationMs: expect.any(Number) }]);
    expect(await count(200)).toBe(1);
    expect((await registry.metrics()).includes('error_type')).toBe(false);
    const [span] = spans();
    expect(span?.name).toBe('GET /open');
    expect(span?.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('open failures are classified: a shed 503 is overload, a 500 the upstream’s', async () => {
    await expect(async () => {
      for await (const _ of client.shed()) void _;
    }).rejects.toMatchObject({ status: 503 });
    await expect(async () => {
      for await (const _ of client.boom()) void _;
    }).rejects.toMatchObject({ status: 500 });
    // A header value undici refuses to send is the caller's request, not the instance's fault.
    await expect(async () => {
      for await (const _ of client.boom({ headers: { 'x-note': 'a\r\nb' } })) void _;
    }).rejects.toMatchObject({ code: 'TRELLIS_REQUEST_INVALID' });
    expect(feedback.outcomes).toEqual([
      { ok: true, fault: 'overload', durationMs: expect.any(Number) },
      { ok: false, fault: 'upstream', durationMs: expect.any(Number) },
      { ok: true, fault: 'caller', durationMs: expect.any(Number) },
    ]);
    expect(await count(undefined, 'request_invalid')).toBe(1);
    expect(await count(503, 'shed')).toBe(1);
    expect(await count(500, '500')).toBe(1);
    expect(spans().map((s) => [s.attributes['error.type'], s.status.code])).toEqual([
      ['shed', SpanStatusCode.ERROR],
      ['500', SpanStatusCode.ERROR],
      ['request_invalid', SpanStatusCode.ERROR],
    ]);
  });

  it('how an open stream ended is its outcome: broke off, invalid item', async () => {
    await expect(async () => {
      for await (const _ of client.broken()) void _;
    }).rejects.toMatchObject({ code: 'TRELLIS_CONNECT_FAILED' });
    await expect(async () => {
      for await (const _ of client.bad()) void _;
    }).rejects.toMatchObject({ code: 'TRELLIS_RESPONSE_INVALID' });
    expect(await count(200, 'connection_error')).toBe(1);
    expect(await count(200, 'response_invalid')).toBe(1);
    // The opens themselves went fine: nothing against the instance.
    expect(feedback.outcomes.map((o) => o.ok)).toEqual([true, true]);
    expect(spans().map((s) => s.attributes['error.type'])).toEqual([
      'connection_error',
      'response_invalid',
    ]);
  });

  it('every SSE reconnection is its own span and observation', async () => {
    const seen = [];
    for await (const e of client.twice()) {
      seen.push(e);
      if (seen.length === 3) break;
    }
    expect(seen.map((e) => (e as { data: { n: number } }).data.n)).toEqual([1, 2, 3]);
    expect(await count(200)).toBe(3);
    expect(spans()).toHaveLength(3);
    expect(feedback.outcomes).toHaveLength(3);
    // Each connection carried its own span as the parent, and resumed from the last id.
    const sent = server.requests.filter((r) => r.url === '/twice');
    expect(sent.map((r) => String(r.headers.traceparent).split('-')[2])).toEqual(
      spans().map((s) => s.spanContext().spanId),
    );
    expect(sent.map((r) => r.headers['last-event-id'])).toEqual([undefined, '1', '2']);
  });

  it('closing the client cuts an open stream (ShutdownError) instead of waiting for it', async () => {
    const it = client.open()[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ data: { n: 1 } });
    await client.close();
    await expect(async () => {
      for (;;) if ((await it.next()).done) break;
    }).rejects.toBeInstanceOf(ShutdownError);
    expect(await count(200, 'shutdown')).toBe(1);
    expect(await waitForNoConnections(server)).toBe(0);
  });

  it("an open that outlives the caller's deadline is the caller's fault; timeoutMs the upstream's", async () => {
    const clock = createTestClock();
    const own = createClient({
      service: 'ticks',
      resolver,
      balancer: feedback.balancer,
      endpoints,
      metrics: registry,
      clock,
      timeoutMs: 1_000,
    });
    const drain = async () => {
      for await (const _ of own.hang()) void _;
    };
    const late = expect(runWithDeadline(100, drain, clock)).rejects.toMatchObject({
      code: 'TRELLIS_TIMEOUT',
      deadline: true,
    });
    const sent = await server.nextRequest();
    expect(sent.headers['x-trellis-deadline-ms']).toBe('100');
    await clock.advance(100);
    await late;
    const slow = expect(drain()).rejects.toMatchObject({ code: 'TRELLIS_TIMEOUT' });
    await server.nextRequest();
    await clock.advance(1_000);
    await slow;
    await own.close();
    expect(await count(undefined, 'deadline')).toBe(1);
    expect(await count(undefined, 'timeout')).toBe(1);
    expect(feedback.outcomes).toEqual([
      { ok: true, fault: 'caller', durationMs: 100 },
      { ok: false, fault: 'upstream', durationMs: 1_000 },
    ]);
  });

  it.skipIf(!hasEngine('promtool'))('the streams’ metrics pass promtool', async () => {
    for await (const _ of client.lines({ params: { count: 1 } })) void _;
    await expect(async () => {
      for await (const _ of client.shed()) void _;
    }).rejects.toThrow();
    const text = await registry.metrics();
    expect(text).not.toContain('=""');
    const result = promtoolCheck(text);
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });
});
