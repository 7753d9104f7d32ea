import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createClient } from '../src/client/createClient.js';
import { defineEndpoints } from '../src/contract/endpoint.js';
import { ndjson, sse } from '../src/contract/stream.js';
import { AbortedError, ResponseValidationError, TimeoutError } from '../src/errors.js';
import type { Policy } from '../src/Policy.js';
import { createTestClock } from '../src/testing/TestClock.js';
import { FLAVOURS, memoryLogger, type Served, startServed } from './serveHarness.js';

const Tick = z.object({ n: z.number().int() });
const api = defineEndpoints({
  ticks: {
    method: 'GET',
    path: '/ticks/:from',
    params: z.object({ from: z.coerce.number().int() }),
    query: z.object({ count: z.coerce.number().int() }),
    response: sse(Tick),
  },
  lines: {
    method: 'GET',
    path: '/lines',
    query: z.object({ count: z.coerce.number() }),
    response: ndjson(Tick),
  },
  forever: { method: 'GET', path: '/forever', response: sse(Tick) },
  resumable: { method: 'GET', path: '/resumable', response: sse(Tick) },
  stalls: { method: 'GET', path: '/stalls', response: ndjson(Tick) },
  bad: { method: 'GET', path: '/bad', response: ndjson(Tick) },
  big: { method: 'GET', path: '/big', response: ndjson(z.object({ pad: z.string() })) },
});

type Gen<T> = AsyncGenerator<T, void, unknown>;
const state = {
  foreverStopped: undefined as (() => void) | undefined,
  foreverSignal: undefined as AbortSignal | undefined,
  lastEventIds: [] as (string | undefined)[],
  produced: 0,
};

const handlers = {
  ticks: ({ params, query }: { params: { from: number }; query: { count: number } }) => ({
    status: 200,
    body: (async function* (): Gen<{ data: { n: number }; id: string }> {
      for (let i = 0; i < query.count; i++)
        yield { data: { n: params.from + i }, id: String(params.from + i) };
    })(),
  }),
  lines: ({ query }: { query: { count: number } }) => ({
    status: 200,
    body: (async function* (): Gen<{ n: number }> {
      for (let i = 0; i < query.count; i++) yield { n: i };
    })(),
  }),
  forever: ({ signal }: { signal: AbortSignal }) => {
    state.foreverSignal = signal;
    return {
      status: 200,
      body: (async function* (): Gen<{ data: { n: number } }> {
        try {
          for (let n = 0; ; n++) {
            yield { data: { n } };
            await new Promise((r) => setImmediate(r));
          }
        } finally {
          state.foreverStopped?.();
        }
      })(),
    };
  },
  resumable: ({ request }: { request: { headers: Record<string, unknown> } }) => {
    const last = request.headers['last-event-id'] as string | undefined;
    state.lastEventIds.push(last);
    const from = last === undefined ? 0 : Number(last) + 1;
    return {
      status: 200,
      body: (async function* (): Gen<{ data: { n: number }; id: string; retry: number }> {
        // Two events per connection, then the server ends the stream.
        for (let n = from; n < from + 2; n++) yield { data: { n }, id: String(n), retry: 1 };
      })(),
    };
  },
  stalls: () => ({
    status: 200,
    body: (async function* (): Gen<{ n: number }> {
      yield { n: 1 };
      await new Promise(() => {});
    })(),
  }),
  bad: () => ({
    status: 200,
    body: (async function* (): Gen<unknown> {
      yield { n: 1 };
      yield { n: 'two' };
    })() as AsyncIterable<{ n: number }>,
  }),
  big: () => ({
    status: 200,
    body: (async function* (): Gen<{ pad: string }> {
      const pad = 'x'.repeat(64 * 1024);
      for (;;) {
        state.produced++;
        yield { pad };
      }
    })(),
  }),
};

describe.each(FLAVOURS)('streams on %s', (flavour) => {
  let served: Served | undefined;
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of closers.splice(0)) await c();
    await served?.close();
    served = undefined;
  });
  const client = (extra: object = {}) => {
    const c = createClient({ baseUrl: (served as Served).base, endpoints: api, ...extra });
    closers.push(() => c.close());
    return c;
  };

  it('sends SSE events and NDJSON lines the typed client yields validated', async () => {
    served = await startServed(flavour, api, handlers);
    const c = client();
    const events = [];
    for await (const e of c.ticks({ params: { from: 5 }, query: { count: 3 } })) {
      events.push(e);
      if (events.length === 3) break;
    }
    expect(events).toEqual([
      { data: { n: 5 }, id: '5' },
      { data: { n: 6 }, id: '6' },
      { data: { n: 7 }, id: '7' },
    ]);
    const lines = [];
    for await (const line of c.lines({ query: { count: 4 } })) lines.push(line);
    expect(lines).toEqual([{ n: 0 }, { n: 1 }, { n: 2 }, { n: 3 }]);
  });

  it('stops the server generator and aborts the handler signal when the client leaves', async () => {
    served = await startServed(flavour, api, handlers);
    const stopped = new Promise<void>((resolve) => {
      state.foreverStopped = resolve;
    });
    const c = client();
    let seen = 0;
    for await (const e of c.forever()) {
      expect(e.data.n).toBe(seen);
      if (++seen === 5) break;
    }
    await stopped;
    expect(state.foreverSignal?.aborted).toBe(true);
  });

  it('reconnects an SSE stream with Last-Event-ID, through the client policy', async () => {
    served = await startServed(flavour, api, handlers);
    state.lastEventIds = [];
    let executions = 0;
    const policy: Policy = {
      execute: async (fn, opts) => {
        executions++;
        return fn({ signal: opts?.signal ?? new AbortController().signal, attempt: 1 });
      },
    };
    const c = client({ policy });
    const seen: number[] = [];
    for await (const e of c.resumable()) {
      seen.push(e.data.n);
      if (seen.length === 6) break;
    }
    expect(seen).toEqual([0, 1, 2, 3, 4, 5]);
    expect(state.lastEventIds).toEqual([undefined, '1', '3']);
    expect(executions).toBe(3);
  });

  it('fails with TimeoutError when the stream stays idle (fake clock)', async () => {
    served = await startServed(flavour, api, handlers);
    const clock = createTestClock();
    const c = client({ clock });
    const it = c.stalls({ idleTimeoutMs: 5_000 })[Symbol.asyncIterator]();
    expect((await it.next()).value).toEqual({ n: 1 });
    const next = expect(it.next()).rejects.toBeInstanceOf(TimeoutError);
    await clock.advance(4_999);
    await clock.advance(1);
    await next;
  });

  it('aborts with the caller signal', async () => {
    served = await startServed(flavour, api, handlers);
    const c = client();
    const controller = new AbortController();
    const it = c.stalls({ signal: controller.signal })[Symbol.asyncIterator]();
    await it.next();
    const next = expect(it.next()).rejects.toBeInstanceOf(AbortedError);
    controller.abort();
    await next;
  });

  it('cuts a stream whose item breaks the contract, and logs it', async () => {
    const logger = memoryLogger();
    served = await startServed(flavour, api, handlers, { logger });
    const c = client();
    const got: unknown[] = [];
    await expect(
      (async () => {
        for await (const x of c.bad()) got.push(x);
      })(),
    ).rejects.toThrow();
    expect(got).toEqual([{ n: 1 }]);
    expect(JSON.stringify(logger.lines)).toContain('item.n');
    // Served without response validation, the client's own validation catches it.
    await served.close();
    served = await startServed(flavour, api, handlers, { validateResponse: false });
    const c2 = client();
    await expect(
      (async () => {
        for await (const _ of c2.bad());
      })(),
    ).rejects.toBeInstanceOf(ResponseValidationError);
  });

  it('holds the generator back while the client does not read (backpressure)', async () => {
    served = await startServed(flavour, api, handlers);
    state.produced = 0;
    const c = client();
    const it = c.big()[Symbol.asyncIterator]();
    await it.next();
    // The reader stops; the server can only fill the socket buffers.
    await new Promise((r) => setTimeout(r, 200));
    const held = state.produced;
    await new Promise((r) => setTimeout(r, 200));
    expect(state.produced).toBe(held);
    expect(held).toBeLessThan(200); // 200 items = 12.5 MiB: far more than the buffers hold
    await it.return?.();
  });
});

describe('stream call options', () => {
  it('refuses a bad idleTimeoutMs or lastEventId before any I/O, naming it', async () => {
    const c = createClient({ baseUrl: 'http://127.0.0.1:9', endpoints: api });
    try {
      const first = (iterable: AsyncIterable<unknown>) => iterable[Symbol.asyncIterator]().next();
      await expect(first(c.forever({ idleTimeoutMs: -1 }))).rejects.toThrow(/idleTimeoutMs/);
      await expect(first(c.forever({ lastEventId: 'a\r\nx-evil: 1' }))).rejects.toThrow(
        /lastEventId/,
      );
    } finally {
      await c.close();
    }
  });
});
