/**
 * One config generation: the route table, the edge stages, the upstream groups and the pools
 * they use. `reload()` builds a new generation and swaps it in; the old one is closed once its
 * last request has finished.
 */
import type { Clock, Logger, Resolver } from '@trellis/core';
import { ConfigError, silentLogger } from '@trellis/core';
import { type BulkheadPolicy, bulkhead, type RetryBudget, retryBudget } from '@trellis/resilience';
import type { Pool } from 'undici';
import { compose, type Handler, type Terminal } from '../chain/compose.js';
import type { GatewayMiddleware } from '../chain/GatewayMiddleware.js';
import type { GatewayConfig, RouteConfig } from '../config/gatewayConfig.js';
import { createEdge, type Edge } from '../stages/createStages.js';
import { encodePath } from './canonicalPath.js';
import type { PoolSet } from './PoolSet.js';
import { RouteTable } from './RouteTable.js';
import { TrustedProxies } from './TrustedProxies.js';
import { UpstreamGroup, type UpstreamTarget } from './UpstreamGroup.js';

/** A route ready to serve. */
export interface RouteRuntime {
  readonly id: string;
  readonly path: string;
  readonly methods: readonly string[] | undefined;
  readonly hosts: readonly string[] | undefined;
  readonly config: RouteConfig;
  readonly upstream: UpstreamGroup;
  /** The route's stages (cors, auth, rateLimit, headers); empty for the fast path. */
  readonly stages: readonly GatewayMiddleware[];
  /** `compose(stages, proxy terminal)`: the terminal itself when there are no stages. */
  readonly handler: Handler;
  /** `compose(stages, upgrade terminal)`: the same stages, the WebSocket tunnel last. */
  readonly upgradeHandler: Handler;
  /** The route has a `cors` stage (it answers preflights). */
  readonly preflight: boolean;
  readonly retry:
    | {
        readonly attempts: number;
        readonly methods: ReadonlySet<string>;
        readonly budget: RetryBudget;
      }
    | undefined;
  readonly bulkhead: BulkheadPolicy | undefined;
  /** Pools by upstream origin, filled by `Generation.pool` (lives as long as the generation). */
  readonly pools: Map<string, Pool>;
  /** The encoded upstream path for a canonical request path. */
  upstreamPath(path: string, rest: string, params: Readonly<Record<string, string>>): string;
}

export interface GenerationDeps {
  readonly resolver: Resolver | undefined;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly pools: PoolSet;
  /** Wall-clock time for JWT checks (default Date.now). */
  readonly now?: (() => number) | undefined;
  /** Metrics registry of the gateway (concurrency stages record into it). */
  readonly metrics?: import('@trellis/core').Metrics | undefined;
  /** Where this generation's components register (see observe/StatusScope). */
  readonly status?: import('@trellis/core').StatusRegistryLike | undefined;
  /** The two terminals: the HTTP proxy and the WebSocket tunnel. */
  readonly terminals: { readonly http: Terminal; readonly upgrade: Terminal };
}

export class Generation {
  readonly config: GatewayConfig;
  readonly table: RouteTable<RouteRuntime>;
  readonly routes: readonly RouteRuntime[];
  readonly edge: Edge;
  /** The access-log writer, or undefined when the log is off. */
  readonly accessLog: Edge['accessLog'];
  /** Lower-case identity header: the client's copy never reaches an upstream. */
  readonly identityHeader: string;
  readonly trusted: TrustedProxies;
  /** Keys of the pools this generation used (see PoolSet). */
  readonly poolKeys = new Set<string>();
  readonly #deps: GenerationDeps;
  #active = 0;
  #waiters: (() => void)[] = [];
  #closed = false;

  constructor(config: GatewayConfig, deps: GenerationDeps) {
    this.config = config;
    this.#deps = deps;
    config.routes.forEach((r, i) => {
      if (r.upstream.service !== undefined && deps.resolver === undefined) {
        throw new ConfigError(
          `gateway: invalid options: routes[${i}].upstream.service: needs the resolver option of createGateway`,
          {
            component: 'gateway',
            issues: [{ path: `routes[${i}].upstream.service`, message: 'needs a resolver' }],
          },
        );
      }
    });
    const names = new Set<string>();
    config.routes.forEach((r, i) => {
      const id = r.name ?? `routes[${i}]`;
      if (names.has(id)) {
        throw new ConfigError(
          `gateway: invalid options: routes[${i}].name: duplicate route name ${id}`,
          {
            component: 'gateway',
            issues: [{ path: `routes[${i}].name`, message: `duplicate route name ${id}` }],
          },
        );
      }
      names.add(id);
    });
    this.trusted = new TrustedProxies(config.trustedProxies);
    const edge = createEdge(config, {
      clock: deps.clock,
      logger: deps.logger,
      now: deps.now,
      metrics: deps.metrics,
    });
    this.edge = edge;
    // A silent logger would drop every line: do not build them.
    this.accessLog = deps.logger === silentLogger ? undefined : edge.accessLog;
    this.identityHeader = edge.identityHeader;
    const built: RouteRuntime[] = [];
    try {
      config.routes.forEach((route, i) => {
        const id = route.name ?? `routes[${i}]`;
        const stages = edge.forRoute({
          ...route,
          id,
          index: i,
          headersMs: route.timeouts.headersMs,
        });
        built.push(makeRoute(route, id, stages, deps));
      });
      this.routes = built;
      this.table = new RouteTable(this.routes);
    } catch (err) {
      // A generation that fails to build releases what it already created.
      void Promise.all([edge.close(), ...built.map((r) => r.upstream.close())]).catch(() => {});
      throw err;
    }
  }

  /** The pool for an upstream target under this route's settings (cached per route and origin). */
  pool(target: UpstreamTarget, route: RouteRuntime): Pool {
    const cached = route.pools.get(target.origin);
    if (cached !== undefined) return cached;
    const c = route.config;
    const pool = this.#deps.pools.get(
      target.origin,
      {
        connections: c.upstream.connections,
        pipelining: c.upstream.pipelining,
        connectMs: c.timeouts.connectMs,
        keepAliveMs: 4_000,
      },
      this.poolKeys,
    );
    route.pools.set(target.origin, pool);
    return pool;
  }

  enter(): void {
    this.#active++;
  }

  leave(): void {
    this.#active--;
    if (this.#active === 0 && this.#waiters.length > 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w();
    }
  }

  get active(): number {
    return this.#active;
  }

  /** Resolves once no request of this generation is in flight. */
  drained(): Promise<void> {
    if (this.#active === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.edge.close(), ...this.routes.map((r) => r.upstream.close())]);
  }
}

function makeRoute(
  config: RouteConfig,
  id: string,
  stages: readonly GatewayMiddleware[],
  deps: GenerationDeps,
): RouteRuntime {
  const upstream = new UpstreamGroup(config, id, deps);
  const r = config.retry;
  const retry =
    r === false || r.attempts < 2
      ? undefined
      : {
          attempts: r.attempts,
          methods: new Set<string>(r.methods),
          budget: retryBudget({
            ratio: r.budgetRatio,
            minRetriesPerSecond: r.minRetriesPerSecond,
            clock: deps.clock,
            ...(deps.status !== undefined && { name: id, status: deps.status }),
          }),
        };
  const bh = config.bulkhead
    ? bulkhead({
        limit: config.bulkhead.limit,
        queue: config.bulkhead.queue,
        clock: deps.clock,
        ...(deps.status !== undefined && { name: id, status: deps.status }),
      })
    : undefined;
  const upstreamPath = pathMapper(config);
  return {
    id,
    path: config.path,
    methods: config.methods,
    hosts: config.hosts?.map((h) => h.toLowerCase()),
    config,
    upstream,
    stages,
    handler: compose(stages, deps.terminals.http),
    upgradeHandler: compose(stages, deps.terminals.upgrade),
    preflight: config.cors !== undefined,
    retry,
    bulkhead: bh,
    pools: new Map(),
    upstreamPath,
  };
}

/** Builds the function that maps a canonical request path to the encoded upstream path. */
function pathMapper(
  config: RouteConfig,
): (path: string, rest: string, params: Readonly<Record<string, string>>) => string {
  const rewrite = config.rewrite;
  if (rewrite !== undefined) {
    const base = rewrite.endsWith('/*') ? rewrite.slice(0, -2) || '/' : rewrite;
    const hasParams = base.includes(':');
    return (_path, rest, params) => {
      let b = base;
      if (hasParams) {
        b = base
          .split('/')
          .map((seg) => (seg.startsWith(':') ? (params[seg.slice(1)] ?? '') : seg))
          .join('/');
      }
      return encodePath(join(b, rest));
    };
  }
  if (config.stripPrefix) return (_path, rest) => encodePath(rest === '' ? '/' : rest);
  return (path) => encodePath(path);
}

function join(base: string, rest: string): string {
  if (rest === '' || rest === '/') return rest === '/' && !base.endsWith('/') ? `${base}/` : base;
  return base.endsWith('/') ? base + rest.slice(1) : base + rest;
}
