/**
 * The running state of one gateway: the config generation in force (route table, stages,
 * upstream groups), the injected dependencies, the metrics, the servers it listens on and the
 * upgraded sockets it tunnels; `reload()` swaps generations atomically and `close()` drains.
 * `createGateway` wraps it in the public `Gateway` object.
 */
import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type AdminHandler,
  type Clock,
  ConfigError,
  createAdminHandler,
  createHealth,
  createMetrics,
  createStatusRegistry,
  type Health,
  type Logger,
  type Metrics,
  type Resolver,
  ShutdownError,
  type StatusRegistry,
  silentLogger,
  statusMetricNames,
  statusMetrics,
  systemClock,
} from '@trellis/core';
import type { ContextHost, RequestContext } from '../chain/RequestContext.js';
import { type GatewayConfig, parseGatewayConfig } from '../config/gatewayConfig.js';
import { type BreakerReading, breakerStateMetric } from '../observe/breakerStateMetric.js';
import { GatewayMetrics } from '../observe/GatewayMetrics.js';
import { registerGeneration } from '../observe/registerGeneration.js';
import { StatusScope } from '../observe/StatusScope.js';
import { tracingActive } from '../observe/spans.js';
import { Generation } from '../proxy/Generation.js';
import { PoolSet } from '../proxy/PoolSet.js';
import { proxyTerminal } from '../proxy/ProxyTerminal.js';
import { upgradeTerminal } from '../proxy/UpgradeTerminal.js';
import { gatewayObserve } from './listen.js';

export interface RuntimeOptions {
  readonly resolver?: Resolver;
  readonly logger?: Logger;
  readonly clock?: Clock;
  readonly now?: () => number;
  readonly metrics?: Metrics;
  readonly health?: Health;
  readonly tracing?: boolean;
  readonly closeTimeoutMs?: number;
  readonly status?: StatusRegistry;
}

export class GatewayRuntime implements ContextHost {
  readonly metrics: Metrics;
  readonly health: Health;
  readonly requestIdHeader: string;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly record: GatewayMetrics;
  /** The status registry routes, upstreams, breakers and budgets register with. */
  readonly status: StatusRegistry;
  readonly #ownStatus: boolean;
  readonly #statusMetricsOff: (() => void) | undefined;
  readonly #breakerMetricOff: () => void;
  readonly #scopes = new Map<Generation, StatusScope>();
  #adminApi: { token: unknown; handler: AdminHandler } | undefined;
  readonly servers = new Set<Server>();
  readonly upgradeSockets = new Set<Duplex>();
  readonly detach: (() => void)[] = [];
  readonly #ownMetrics: boolean;
  readonly #ownHealth: boolean;
  readonly #resolver: Resolver | undefined;
  readonly #now: (() => number) | undefined;
  readonly #tracing: boolean;
  readonly #closeTimeoutMs: number;
  readonly #pools = new PoolSet();
  // Request ids are `<random per gateway>-<counter>`: unique, cheaper than a random UUID.
  readonly #idPrefix = `${randomBytes(8).toString('hex')}-`;
  #idCounter = 0;
  readonly #live = new Set<Generation>();
  readonly #terminals = { http: proxyTerminal(this), upgrade: upgradeTerminal(this) };
  readonly observe: ContextHost['observe'];
  current: Generation;
  #closing: Promise<void> | undefined;

  constructor(config: unknown, opts: RuntimeOptions) {
    // Validated first: a bad config creates nothing.
    const parsed = parseGatewayConfig(config);
    this.#resolver = opts.resolver;
    this.#now = opts.now;
    this.logger = opts.logger ?? silentLogger;
    this.clock = opts.clock ?? systemClock;
    this.#tracing = opts.tracing ?? true;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? 10_000;
    this.#ownMetrics = opts.metrics === undefined;
    // With process and Node.js default metrics (createMetrics adds them once per registry).
    this.metrics = opts.metrics ?? createMetrics();
    this.#ownHealth = opts.health === undefined;
    this.health = opts.health ?? createHealth({ signals: false, clock: this.clock });
    this.record = new GatewayMetrics(this.metrics);
    this.#ownStatus = opts.status === undefined;
    this.status = opts.status ?? createStatusRegistry({ service: 'gateway', health: this.health });
    // Once per metrics registry: a host that called statusMetrics itself keeps its own.
    this.#statusMetricsOff =
      this.metrics.registry.getSingleMetric(statusMetricNames.events) === undefined
        ? statusMetrics(this.status, this.metrics)
        : undefined;
    this.observe = gatewayObserve(this);
    this.#breakerMetricOff = breakerStateMetric(this.metrics, () => this.#breakerStates());
    this.requestIdHeader = parsed.requestIdHeader;
    try {
      this.current = this.#build(parsed);
    } catch (err) {
      // Leave an injected registry as it was.
      this.#breakerMetricOff();
      this.#statusMetricsOff?.();
      if (this.#ownStatus) this.status.close();
      throw err;
    }
    this.#scopes.get(this.current)?.activate();
  }

  get config(): GatewayConfig {
    return this.current.config;
  }
  get closing(): boolean {
    return this.#closing !== undefined;
  }
  /** Tracing on and an OpenTelemetry SDK registered. */
  get tracing(): boolean {
    return this.#tracing && tracingActive();
  }

  nextRequestId(): string {
    return this.#idPrefix + (++this.#idCounter).toString(36);
  }

  /**
   * The admin API (`/admin/*`) for the config in force, or undefined with `admin.api: false`.
   * Rebuilt when a reload changes `admin.token`.
   */
  adminApi(): AdminHandler | undefined {
    const a = this.config.admin;
    if (!a.api) return undefined;
    if (this.#adminApi === undefined || this.#adminApi.token !== a.token) {
      this.#adminApi?.handler.close();
      const handler = createAdminHandler({
        status: this.status,
        logger: this.logger,
        ...(a.token === undefined ? { unauthenticated: true } : { token: a.token }),
      });
      this.#adminApi = { token: a.token, handler };
    }
    return this.#adminApi.handler;
  }

  *#breakerStates(): Iterable<BreakerReading> {
    if (this.#closing !== undefined) return;
    for (const route of this.current.routes) {
      const breakers = route.upstream.breakers;
      if (breakers === undefined) continue;
      for (const i of route.upstream.instances) yield [route.id, i.id, breakers.get(i.id).state];
    }
  }

  #build(config: GatewayConfig): Generation {
    const scope = new StatusScope(this.status, this.logger);
    const gen = new Generation(config, {
      status: scope,
      resolver: this.#resolver,
      clock: this.clock,
      logger: this.logger,
      pools: this.#pools,
      now: this.#now,
      terminals: this.#terminals,
      metrics: this.metrics,
    });
    registerGeneration(gen, scope);
    this.#scopes.set(gen, scope);
    this.#live.add(gen);
    return gen;
  }

  reload(input: unknown): void {
    if (this.#closing !== undefined) throw new ShutdownError('gateway: closed, cannot reload');
    let next: Generation;
    try {
      const parsed = parseGatewayConfig(input);
      if (parsed.requestIdHeader !== this.requestIdHeader) {
        const issue = { path: 'requestIdHeader', message: 'cannot change on reload' };
        throw new ConfigError(`gateway: invalid options: ${issue.path}: ${issue.message}`, {
          component: 'gateway',
          issues: [issue],
        });
      }
      next = this.#build(parsed);
    } catch (err) {
      this.logger.error({ err }, 'gateway: reload rejected, keeping the previous config');
      throw err;
    }
    const prev = this.current;
    this.current = next;
    // The old generation's entries leave before the new ones register (names are reused).
    this.#scopes.get(prev)?.deactivate();
    this.#scopes.get(next)?.activate();
    this.logger.info({ routes: next.routes.length }, 'gateway: config reloaded');
    void this.#retire(prev);
  }

  async #retire(gen: Generation): Promise<void> {
    await gen.drained();
    this.#live.delete(gen);
    const keep = new Set<string>();
    for (const g of this.#live) for (const k of g.poolKeys) keep.add(k);
    this.#scopes.get(gen)?.deactivate();
    this.#scopes.delete(gen);
    await gen.close();
    await this.#pools.release(gen.poolKeys, keep);
  }

  /** Called exactly once per request (through `ctx.finish`): metrics and the access log. */
  complete(ctx: RequestContext, status: number, now = this.clock.now()): void {
    const gen = ctx.gen;
    gen.leave();
    const durationMs = now - ctx.startedAt;
    this.record.request(ctx.req.method ?? 'GET', ctx.route?.id, status, durationMs / 1000);
    const log = gen.accessLog;
    if (log !== undefined) log(ctx, status, durationMs, status === 499 || ctx.clientGone);
  }

  countError(route: string | undefined, code: string, status: number): void {
    this.record.error(route, code, status);
  }
  countRetry(route: string): void {
    this.record.retry(route);
  }
  observeUpstream(route: string, upstream: string, status: number, seconds: number): void {
    this.record.upstream(route, upstream, status, seconds);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /** Resolves within about `closeTimeoutMs` whatever is pending: in-flight requests are then cut. */
  async #close(): Promise<void> {
    // Event streams of the admin API end first: they would hold the admin listener open.
    this.#adminApi?.handler.close();
    const servers = [...this.servers];
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of servers) s.closeIdleConnections();
    // Upgraded connections (WebSockets) live until closed: do not wait for them.
    for (const s of this.upgradeSockets) s.destroy();
    const gens = [...this.#live];
    await withCap(Promise.all(gens.map((g) => g.drained())), this.#closeTimeoutMs, this.clock);
    for (const s of this.upgradeSockets) s.destroy();
    for (const s of servers) s.closeAllConnections();
    for (const d of this.detach) d();
    // Bounded too: a stage stuck on a dependency (a trickling JWKS endpoint) cannot hold close().
    await withCap(
      Promise.all([this.#pools.closeAll(true), ...gens.map((g) => g.close())]),
      this.#closeTimeoutMs,
      this.clock,
    );
    this.#live.clear();
    for (const scope of this.#scopes.values()) scope.deactivate();
    this.#scopes.clear();
    await withCap(Promise.all(closed), this.#closeTimeoutMs, this.clock);
    this.#statusMetricsOff?.();
    this.#breakerMetricOff();
    if (this.#ownMetrics) this.metrics.close();
    if (this.#ownHealth) this.health.close();
    if (this.#ownStatus) this.status.close();
  }
}

async function withCap(p: Promise<unknown>, ms: number, clock: Clock): Promise<void> {
  let timer: ReturnType<Clock['setTimeout']> | undefined;
  const cap = new Promise<void>((resolve) => {
    timer = clock.setTimeout(resolve, ms);
  });
  await Promise.race([
    p.then(
      () => undefined,
      () => undefined,
    ),
    cap,
  ]);
  if (timer !== undefined) clock.clearTimeout(timer);
}
