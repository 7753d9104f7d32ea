import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import {
  AbortedError,
  type Balancer,
  createClient,
  type Instance,
  NoInstanceError,
  type PickOptions,
  type PickOutcome,
  type Policy,
  type Resolver,
} from '../src/index.js';
import { json, startServer, type TestServer, waitForNoConnections } from './clientServer.js';

const endpoints = {
  whoami: { method: 'GET', path: '/whoami', response: z.object({ name: z.string() }) },
  slow: { method: 'GET', path: '/slow', response: z.object({ name: z.string() }) },
} as const;

/** A resolver whose instance list the test controls. */
class TestResolver implements Resolver {
  instances: Instance[] = [];
  readonly listeners = new Set<(i: Instance[]) => void>();
  resolveCalls = 0;
  failNext = false;

  async resolve(): Promise<Instance[]> {
    this.resolveCalls++;
    if (this.failNext) {
      this.failNext = false;
      throw new Error('registry unavailable');
    }
    return this.instances;
  }

  watch(_service: string, onChange: (i: Instance[]) => void): () => void {
    this.listeners.add(onChange);
    return () => this.listeners.delete(onChange);
  }

  set(instances: Instance[]): void {
    this.instances = instances;
    for (const listener of this.listeners) listener(instances);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}

/** Round robin that records every pick, its exclude set and its outcome. */
function recordingBalancer() {
  const picks: { id: string; exclude: string[] }[] = [];
  const outcomes: (PickOutcome & { id: string })[] = [];
  let next = 0;
  const balancer: Balancer = {
    pick(instances: readonly Instance[], opts?: PickOptions) {
      const candidates = instances.filter((i) => !opts?.exclude?.has(i.id));
      const list = candidates.length > 0 ? candidates : instances;
      const instance = list[next++ % list.length];
      if (instance === undefined) return undefined;
      picks.push({ id: instance.id, exclude: [...(opts?.exclude ?? [])] });
      return { instance, done: (o: PickOutcome) => outcomes.push({ id: instance.id, ...o }) };
    },
  };
  return { balancer, picks, outcomes };
}

const inst = (id: string, server: TestServer): Instance => ({ id, url: server.url });

describe('createClient with a resolver and a balancer (two real servers)', () => {
  let a: TestServer;
  let b: TestServer;
  let releaseB: (() => void)[] = [];
  let resolver: TestResolver;

  beforeEach(async () => {
    releaseB = [];
    a = await startServer((_req, res) => json(res, 200, { name: 'a' }));
    b = await startServer((req, res) => {
      if (req.url === '/slow') releaseB.push(() => json(res, 200, { name: 'b' }));
      else json(res, 200, { name: 'b' });
    });
    resolver = new TestResolver();
    resolver.instances = [inst('a', a), inst('b', b)];
  });
  afterEach(async () => {
    await a.close();
    await b.close();
  });

  it('resolves lazily, then spreads calls round robin by default', async () => {
    const client = createClient({ service: 'items', resolver, endpoints });
    const names: string[] = [];
    for (let i = 0; i < 4; i++) names.push((await client.whoami()).name);
    expect(names.sort()).toEqual(['a', 'a', 'b', 'b']);
    expect(resolver.resolveCalls).toBe(1);
    await client.close();
    expect(resolver.listeners.size).toBe(0);
  });

  it('reports each outcome to the balancer exactly once', async () => {
    const { balancer, outcomes } = recordingBalancer();
    const client = createClient({ service: 'items', resolver, balancer, endpoints });
    await client.whoami();
    await client.whoami();
    await client.close();
    expect(outcomes.map((o) => o.id)).toEqual(['a', 'b']);
    for (const o of outcomes) {
      expect(o.ok).toBe(true);
      expect(o.durationMs).toBeGreaterThanOrEqual(0);
    }
  });

  it('follows watch updates, and drains (does not cut) a pool whose instance left', async () => {
    const { balancer, picks } = recordingBalancer();
    const client = createClient({ service: 'items', resolver, balancer, endpoints });
    await client.whoami(); // a
    const seen = b.nextRequest();
    const inFlight = client.slow(); // b, held open by the server
    await seen;
    resolver.set([inst('a', a)]);
    // New calls go to a only.
    for (let i = 0; i < 3; i++) expect((await client.whoami()).name).toBe('a');
    // The in-flight call on the removed instance still completes.
    for (const release of releaseB) release();
    await expect(inFlight).resolves.toEqual({ name: 'b' });
    // Then the drained pool lets its sockets go.
    expect(await waitForNoConnections(b)).toBe(0);
    expect(picks.map((p) => p.id)).toEqual(['a', 'b', 'a', 'a', 'a']);
    // An instance that comes back gets a fresh pool.
    resolver.set([inst('a', a), inst('b', b)]);
    const names = new Set<string>();
    for (let i = 0; i < 4; i++) names.add((await client.whoami()).name);
    expect(names).toEqual(new Set(['a', 'b']));
    await client.close();
    expect(await waitForNoConnections(a)).toBe(0);
    expect(await waitForNoConnections(b)).toBe(0);
  });

  it('throws NoInstanceError without I/O when no instance is left', async () => {
    const client = createClient({ service: 'items', resolver, endpoints });
    await client.whoami();
    resolver.set([]);
    const err = await client.whoami().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NoInstanceError);
    expect((err as NoInstanceError).service).toBe('items');
    expect((err as NoInstanceError).retryable).toBe(true);
    expect(a.requests.length + b.requests.length).toBe(1);
    await client.close();
  });

  it('picks again on each attempt, excluding instances already tried', async () => {
    await a.close();
    a = await startServer((_req, res) => json(res, 503, { busy: true }));
    resolver.instances = [inst('a', a), inst('b', b)];
    const { balancer, picks, outcomes } = recordingBalancer();
    const policy: Policy = {
      async execute(fn, opts) {
        const signal = opts?.signal ?? new AbortController().signal;
        for (let attempt = 1; ; attempt++) {
          try {
            return await fn({ signal, attempt });
          } catch (err) {
            if (attempt === 3) throw err;
          }
        }
      },
    };
    const client = createClient({ service: 'items', resolver, balancer, policy, endpoints });
    await expect(client.whoami()).resolves.toEqual({ name: 'b' });
    expect(picks).toEqual([
      { id: 'a', exclude: [] },
      { id: 'b', exclude: ['a'] },
    ]);
    expect(outcomes.map((o) => [o.id, o.ok])).toEqual([
      ['a', false],
      ['b', true],
    ]);
    await client.close();
  });

  it('surfaces a failed resolve and tries again on the next call', async () => {
    resolver.failNext = true;
    const client = createClient({ service: 'items', resolver, endpoints });
    await expect(client.whoami()).rejects.toThrow('registry unavailable');
    await expect(client.whoami()).resolves.toHaveProperty('name');
    expect(resolver.resolveCalls).toBe(2);
    await client.close();
  });

  it('does not send a call whose signal aborted while discovery was resolving', async () => {
    let release: (() => void) | undefined;
    const slow: Resolver = {
      resolve: () =>
        new Promise((resolve) => {
          release = () => resolve([inst('a', a)]);
        }),
      watch: () => () => {},
      close: async () => {},
    };
    const { balancer, outcomes } = recordingBalancer();
    const client = createClient({ service: 'items', resolver: slow, balancer, endpoints });
    const controller = new AbortController();
    const call = client.whoami({ signal: controller.signal }).catch((e: unknown) => e);
    controller.abort();
    release?.();
    expect(await call).toBeInstanceOf(AbortedError);
    expect(a.requests).toHaveLength(0);
    expect(outcomes).toEqual([{ id: 'a', ok: true, durationMs: 0 }]);
    await client.close();
  });

  it('uses a watch update that arrives before the first call', async () => {
    const client = createClient({ service: 'items', resolver, endpoints });
    resolver.set([inst('b', b)]);
    expect(await client.whoami()).toEqual({ name: 'b' });
    expect(resolver.resolveCalls).toBe(0);
    await client.close();
  });
});
