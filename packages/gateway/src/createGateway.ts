/**
 * `createGateway(config, options)`: the proxy core. One request goes through
 *
 *   framing firewall -> canonical path -> admin endpoints -> route match
 *   -> route chain (cors -> auth -> rateLimit -> header transforms; none: the fast path)
 *   -> bulkhead -> balancer pick (skipping open breakers) -> undici dispatch (timeouts)
 *   -> retry on a safe failure -> stream the response back
 *
 * The route table, the edge stages and the upstream groups form a "generation"; `reload()`
 * builds a new one and swaps it atomically. Requests finish on the generation they started on.
 * Every request the handler answers (except /health and /metrics) ends in `complete()`, which
 * records the metrics and writes the access-log line.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { ProxyTracerProvider, trace } from '@opentelemetry/api';
import {
  type Clock,
  ConfigError,
  createDurationHistogram,
  createHealth,
  createMetrics,
  createObservabilityHandler,
  type DurationHistogram,
  type Health,
  type Logger,
  type Metrics,
  type ObservabilityHandler,
  parseOptions,
  type Resolver,
  ShutdownError,
  silentLogger,
  systemClock,
  type TrellisError,
} from '@trellis/core';
import { Counter } from 'prom-client';
import { z } from 'zod';
import { canonicalPath } from './proxy/canonicalPath.js';
import { Exchange } from './chain/RequestContext.js';
import { BadFramingError, BadPathError, RouteNotFoundError } from './errors.js';
import { CLIENT_CLOSED, Forward } from './proxy/ProxyTerminal.js';
import type { GatewayMiddleware } from './chain/GatewayMiddleware.js';
import { Generation, type RouteRuntime } from './proxy/Generation.js';
import { type GatewayConfig, parseGatewayConfig } from './config/gatewayConfig.js';
import { PoolSet } from './proxy/PoolSet.js';
import { proxyUpgrade } from './proxy/UpgradeTerminal.js';
import { normalizeIp } from './proxy/TrustedProxies.js';

/** Options that are objects, not config: injected dependencies. */
export interface GatewayOptions {
  /** Resolves `upstream.service` names (etcd, Consul, DNS, static...). */
  readonly resolver?: Resolver;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Metrics registry holder; one is created when absent. */
  readonly metrics?: Metrics;
  /** Health checks served at /health*; one is created when absent. */
  readonly health?: Health;
  /** OpenTelemetry CLIENT span per upstream attempt and `traceparent` propagation. Default true. */
  readonly tracing?: boolean;
  /** How long `close()` waits for in-flight requests before cutting them. Default 10_000. */
  readonly closeTimeoutMs?: number;
}

/** A running gateway. */
export interface Gateway {
  /**
   * The request handler: `http.createServer(gateway.handler)`, `app.use(gateway.handler)`.
   * As Express middleware it never calls `next`: unmatched requests get a 404 JSON answer.
   */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Starts a standalone server (with the header-size and slowloris limits of `config.limits`). */
  listen(port?: number, host?: string): Promise<{ readonly port: number; readonly host: string }>;
  /** Stops accepting, lets in-flight requests finish (up to `closeTimeoutMs`), releases everything. */
  close(): Promise<void>;
  /** Validates and swaps in a new config atomically; throws `ConfigError` and keeps the old one. */
  reload(config: unknown): void;
  /** Proxies WebSocket upgrades arriving at `server` (routes with `websocket: true`). Returns a detach function. */
  attachUpgrade(server: Server): () => void;
  /** The config in force. */
  readonly config: GatewayConfig;
  readonly metrics: Metrics;
  readonly health: Health;
}

const optionsSchema = z
  .object({
    resolver: z.custom<Resolver>((v) => typeof (v as Resolver)?.resolve === 'function').optional(),
    logger: z.custom<Logger>((v) => typeof (v as Logger)?.info === 'function').optional(),
    clock: z.custom<Clock>((v) => typeof (v as Clock)?.now === 'function').optional(),
    metrics: z.custom<Metrics>((v) => typeof (v as Metrics)?.text === 'function').optional(),
    health: z.custom<Health>((v) => typeof (v as Health)?.ready === 'function').optional(),
    tracing: z.boolean().optional(),
    closeTimeoutMs: z.number().int().min(0).optional(),
  })
  .strict();

const REQUEST_ID = /^[A-Za-z0-9._:@=+/-]{1,200}$/;
const ADMIN_PATHS = new Set(['/health', '/health/live', '/health/ready', '/metrics']);

/**
 * Creates a gateway from a config (validated with zod; errors name the field).
 *
 * @example
 * ```ts
 * import { createGateway } from '@trellis/gateway';
 * const gateway = createGateway({
 *   routes: [{ path: '/api/users', stripPrefix: true, upstream: { urls: ['http://127.0.0.1:3001'] } }],
 * });
 * const { port } = await gateway.listen(8080);
 * // later: await gateway.close();
 * ```
 */
export function createGateway(config: unknown, options: GatewayOptions = {}): Gateway {
  return new TrellisGateway(config, options);
}

class TrellisGateway implements Gateway {
  readonly metrics: Metrics;
  readonly health: Health;
  readonly requestIdHeader: string;
  readonly #ownMetrics: boolean;
  readonly #ownHealth: boolean;
  readonly #resolver: Resolver | undefined;
  readonly #logger: Logger;
  readonly #clock: Clock;
  readonly #tracing: boolean;
  readonly #closeTimeoutMs: number;
  readonly #pools = new PoolSet();
  readonly #upstreamDuration: DurationHistogram;
  // Request ids are `<random per gateway>-<counter>`: unique, and cheaper per request than a
  // random UUID.
  readonly #idPrefix = `${randomBytes(8).toString('hex')}-`;
  #idCounter = 0;
  readonly #errors: Counter<'route' | 'code'>;
  readonly #retries: Counter<'route'>;
  readonly #observe: ObservabilityHandler;
  readonly #servers = new Set<Server>();
  readonly #upgradeSockets = new Set<Duplex>();
  readonly #detach: (() => void)[] = [];
  readonly #live = new Set<Generation>();
  #current: Generation;
  #closing: Promise<void> | undefined;

  constructor(config: unknown, options: GatewayOptions) {
    const opts = parseGatewayOptions(options);
    this.#resolver = opts.resolver;
    this.#logger = opts.logger ?? silentLogger;
    this.#clock = opts.clock ?? systemClock;
    this.#tracing = opts.tracing ?? true;
    this.#closeTimeoutMs = opts.closeTimeoutMs ?? 10_000;
    this.#ownMetrics = opts.metrics === undefined;
    this.metrics = opts.metrics ?? createMetrics({ defaultMetrics: false });
    this.#ownHealth = opts.health === undefined;
    this.health = opts.health ?? createHealth({ signals: false, clock: this.#clock });
    this.#upstreamDuration = upstreamHistogram(this.metrics);
    this.#errors = counter(
      this.metrics,
      'trellis_gateway_errors_total',
      'Error answers the gateway generated itself (no route, bad path, 413, 502, 503, 504, ...), by route and error code.',
      ['route', 'code'] as const,
    );
    this.#retries = counter(
      this.metrics,
      'trellis_gateway_retries_total',
      'Upstream attempts that were retries, by route.',
      ['route'] as const,
    );
    this.#observe = createObservabilityHandler({ health: this.health, metrics: this.metrics });
    const parsed = parseGatewayConfig(config);
    this.requestIdHeader = parsed.requestIdHeader;
    this.#current = this.#build(parsed);
  }

  get config(): GatewayConfig {
    return this.#current.config;
  }

  #build(config: GatewayConfig): Generation {
    const gen = new Generation(config, {
      resolver: this.#resolver,
      clock: this.#clock,
      logger: this.#logger,
      pools: this.#pools,
    });
    this.#live.add(gen);
    return gen;
  }

  reload(input: unknown): void {
    if (this.#closing !== undefined) throw new ShutdownError('gateway: closed, cannot reload');
    let next: Generation;
    try {
      const parsed = parseGatewayConfig(input);
      if (parsed.requestIdHeader !== this.requestIdHeader) {
        throw new ConfigError(
          'gateway: invalid options: requestIdHeader: cannot change on reload',
          {
            component: 'gateway',
            issues: [{ path: 'requestIdHeader', message: 'cannot change on reload' }],
          },
        );
      }
      next = this.#build(parsed);
    } catch (err) {
      this.#logger.error({ err }, 'gateway: reload rejected, keeping the previous config');
      throw err;
    }
    const prev = this.#current;
    this.#current = next;
    this.#logger.info({ routes: next.routes.length }, 'gateway: config reloaded');
    void this.#retire(prev);
  }

  async #retire(gen: Generation): Promise<void> {
    await gen.drained();
    this.#live.delete(gen);
    const keep = new Set<string>();
    for (const g of this.#live) for (const k of g.poolKeys) keep.add(k);
    await gen.close();
    await this.#pools.release(gen.poolKeys, keep);
  }

  // ------------------------------------------------------------------------------------------
  // Request handling
  // ------------------------------------------------------------------------------------------

  readonly handler = (req: IncomingMessage, res: ServerResponse): void => {
    const gen = this.#current;
    const startedAt = this.#clock.now();
    const socket = req.socket;
    const peer = normalizeIp(socket.remoteAddress ?? '');
    const trusted = gen.trusted;
    const peerTrusted = trusted.enabled && trusted.isTrustedPeer(peer);
    const incomingId = req.headers[this.requestIdHeader];
    const requestId =
      peerTrusted && typeof incomingId === 'string' && REQUEST_ID.test(incomingId)
        ? incomingId
        : this.#idPrefix + (++this.#idCounter).toString(36);
    const xff = req.headers['x-forwarded-for'];
    const clientIp = peerTrusted
      ? trusted.clientIp(peer, typeof xff === 'string' ? xff : xff?.join(','))
      : peer;
    const target = canonicalPath(req.url ?? '');
    const ex = new Exchange(
      req,
      res,
      this,
      typeof target === 'string' ? '' : target.path,
      typeof target === 'string' ? '' : target.search,
      requestId,
      clientIp,
      startedAt,
    );
    ex.peer = peer;
    ex.peerTrusted = peerTrusted;
    gen.enter();
    if (this.#closing !== undefined) {
      this.#fail(gen, ex, undefined, new ShutdownError('gateway: shutting down'), {
        'retry-after': '1',
      });
      return;
    }
    const framing = checkFraming(req);
    if (framing !== undefined) {
      this.#fail(gen, ex, undefined, new BadFramingError(framing));
      return;
    }
    if (typeof target === 'string') {
      this.#fail(gen, ex, undefined, new BadPathError(`bad request target: ${target}`));
      return;
    }
    if (gen.adminOnGateway && ADMIN_PATHS.has(target.path) && this.#observe(req, res)) {
      res.once('close', () => gen.leave());
      return;
    }
    const match = gen.table.match(target.path, req.method ?? 'GET', req.headers.host);
    if (match === undefined) {
      this.#fail(
        gen,
        ex,
        undefined,
        new RouteNotFoundError(`no route for ${req.method} ${target.path}`),
      );
      return;
    }
    const route = match.route;
    ex.routeId = route.id;
    ex.params = match.params;
    const forward = new Forward(this, gen, route, ex, match.rest);
    // `on`, not `once` (no wrapper per request): Forward removes it when the exchange is over.
    res.on('close', forward.onClose);
    const chain = route.chain;
    if (chain === undefined) {
      forward.start();
      return;
    }
    runChain(chain, 0, ex, forward).then(
      () => forward.chainDone(),
      (err: unknown) => forward.chainFailed(err),
    );
  };

  /** Answers a gateway error (JSON body) and records the request. */
  #fail(
    gen: Generation,
    ex: Exchange,
    route: RouteRuntime | undefined,
    err: TrellisError,
    headers?: Record<string, string>,
  ): void {
    const status = (err.constructor as { status?: number }).status ?? 500;
    ex.reply(status, err.code, err.message, headers);
    this.countError(route?.id, err.code);
    this.complete(gen, ex, route, status);
  }

  /** Called exactly once per request when it is over: metrics and the access log. */
  complete(
    gen: Generation,
    ex: Exchange,
    route: RouteRuntime | undefined,
    status: number,
    now = this.#clock.now(),
  ): void {
    gen.leave();
    const durationMs = now - ex.startedAt;
    this.metrics.recordServerRequest({
      method: ex.req.method ?? 'GET',
      route: route?.id,
      status,
      durationSeconds: durationMs / 1000,
    });
    const log = gen.accessLog;
    if (log !== undefined) log(ex, status, durationMs, status === CLIENT_CLOSED || ex.clientGone);
  }

  fail(
    gen: Generation,
    ex: Exchange,
    route: RouteRuntime,
    err: TrellisError,
    headers?: Record<string, string>,
  ): void {
    this.#fail(gen, ex, route, err, headers);
  }

  countError(route: string | undefined, code: string): void {
    this.#errors.inc({ route: route ?? 'unmatched', code });
  }

  countRetry(route: string): void {
    this.#retries.inc({ route });
  }

  observeUpstream(route: string, upstream: string, status: number, seconds: number): void {
    this.#upstreamDuration.observe(route, upstream, status, seconds);
  }

  get clock(): Clock {
    return this.#clock;
  }
  get closing(): boolean {
    return this.#closing !== undefined;
  }
  readonly tracer = trace.getTracer('@trellis/gateway');
  /**
   * True when tracing is on and an OpenTelemetry SDK is registered. Without an SDK every span
   * would be a non-recording no-op: skip the context, propagation and span work entirely (an
   * incoming `traceparent` is then forwarded unchanged, as before). Checked per request, so an
   * SDK registered after `createGateway` is picked up.
   */
  get tracing(): boolean {
    if (!this.#tracing) return false;
    const provider = trace.getTracerProvider();
    return (
      !(provider instanceof ProxyTracerProvider) ||
      provider.getDelegateTracer('@trellis/gateway') !== undefined
    );
  }
  get logger(): Logger {
    return this.#logger;
  }

  // ------------------------------------------------------------------------------------------
  // Servers, upgrades, close
  // ------------------------------------------------------------------------------------------

  async listen(port = 0, host?: string): Promise<{ port: number; host: string }> {
    if (this.#closing !== undefined) throw new ShutdownError('gateway: closed');
    const limits = this.#current.config.limits;
    const server = createServer(
      {
        maxHeaderSize: limits.maxHeaderBytes,
        headersTimeout: limits.headersTimeoutMs,
        requestTimeout: limits.requestTimeoutMs,
        keepAliveTimeout: limits.keepAliveTimeoutMs,
        connectionsCheckingInterval: Math.min(1_000, Math.max(50, limits.headersTimeoutMs / 4)),
        requireHostHeader: true,
      },
      this.handler,
    );
    server.on('clientError', onClientError);
    this.#servers.add(server);
    this.#detach.push(this.attachUpgrade(server));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const admin = this.#current.config.admin;
    if (admin.mode === 'port') await this.#listenAdmin(admin.port, admin.host);
    const addr = server.address() as AddressInfo;
    return { port: addr.port, host: addr.address };
  }

  async #listenAdmin(port: number, host: string): Promise<void> {
    const observe = this.#observe;
    const server = createServer((req, res) => {
      if (!observe(req, res)) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"code":"TRELLIS_GATEWAY_NO_ROUTE","message":"not an admin path"}}');
      }
    });
    this.#servers.add(server);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  }

  attachUpgrade(server: Server): () => void {
    const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): void => {
      if (this.#closing !== undefined) {
        socket.destroy();
        return;
      }
      this.#upgradeSockets.add(socket);
      socket.once('close', () => this.#upgradeSockets.delete(socket));
      proxyUpgrade(this, this.#current, req, socket as Socket, head, this.#upgradeSockets);
    };
    server.on('upgrade', onUpgrade);
    return () => server.off('upgrade', onUpgrade);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const servers = [...this.#servers];
    const closed = servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of servers) s.closeIdleConnections();
    // Upgraded connections (WebSockets) live until closed: do not wait for them.
    for (const s of this.#upgradeSockets) s.destroy();
    // Let in-flight requests finish, up to closeTimeoutMs.
    const gens = [...this.#live];
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const grace = new Promise<void>((resolve) => {
      timer = this.#clock.setTimeout(resolve, this.#closeTimeoutMs);
    });
    await Promise.race([Promise.all(gens.map((g) => g.drained())), grace]);
    if (timer !== undefined) this.#clock.clearTimeout(timer);
    for (const s of this.#upgradeSockets) s.destroy();
    await this.#pools.closeAll(true);
    for (const s of servers) s.closeAllConnections();
    for (const d of this.#detach) d();
    await Promise.all(gens.map((g) => g.close()));
    this.#live.clear();
    await Promise.all(closed);
    if (this.#ownMetrics) this.metrics.close();
    if (this.#ownHealth) this.health.close();
  }
}

function parseGatewayOptions(options: GatewayOptions): GatewayOptions {
  parseOptions(optionsSchema, options, 'createGateway');
  return options;
}

function counter<L extends string>(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = metrics.registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [metrics.registry] });
}

function upstreamHistogram(metrics: Metrics): DurationHistogram {
  return createDurationHistogram(metrics, {
    name: 'trellis_gateway_upstream_request_duration_seconds',
    help: 'Duration of gateway requests to upstream instances (to the end of the response), by route, upstream instance and status (0 = no response).',
    labelNames: ['route', 'upstream', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  });
}

/** The framing firewall for what Node's parser lets through. Returns why, or undefined. */
export function checkFraming(req: IncomingMessage): string | undefined {
  const headers = req.headers;
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te === undefined && cl === undefined) return undefined;
  if (te !== undefined && cl !== undefined) return 'both Content-Length and Transfer-Encoding';
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
    return `unsupported Transfer-Encoding: ${te}`;
  }
  if (cl !== undefined && !/^\d{1,15}$/.test(cl)) return 'invalid Content-Length';
  // Node keeps the first of duplicate Content-Length / Transfer-Encoding headers: look again.
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 14 || name.length === 17) {
      const lower = name.toLowerCase();
      if (lower === 'content-length' || lower === 'transfer-encoding') seen++;
    }
  }
  return seen > 1 ? 'duplicate Content-Length or Transfer-Encoding' : undefined;
}

function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  if (!socket.writable || (socket as Socket & { _httpMessage?: unknown })._httpMessage) {
    socket.destroy();
    return;
  }
  const [status, code, message] =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? [431, 'TRELLIS_GATEWAY_HEADERS_TOO_LARGE', 'request headers too large']
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'TRELLIS_GATEWAY_REQUEST_TIMEOUT', 'request headers not received in time']
        : [400, 'TRELLIS_GATEWAY_BAD_FRAMING', 'malformed request'];
  const body = JSON.stringify({ error: { code, message, requestId: '' } });
  const reason =
    status === 431
      ? 'Request Header Fields Too Large'
      : status === 408
        ? 'Request Timeout'
        : 'Bad Request';
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nconnection: close\r\ncontent-type: application/json; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

async function runChain(
  chain: readonly GatewayMiddleware[],
  i: number,
  ex: Exchange,
  forward: Forward,
): Promise<void> {
  if (ex.answered) return;
  if (i === chain.length) return forward.proxy();
  const mw = chain[i] as GatewayMiddleware;
  return mw(ex, () => runChain(chain, i + 1, ex, forward));
}
