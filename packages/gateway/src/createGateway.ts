/**
 * `createGateway(config, options)`: one request pipeline.
 *
 *   server/   handleRequest, handleUpgrade, framing, listen (+ admin listener)
 *   chain/    createContext -> compose(stages, terminal) -> replyError (the one error path)
 *   stages/   cors -> auth -> rateLimit -> headers
 *   proxy/    the HTTP proxy terminal and the WebSocket tunnel terminal (shared header
 *             building, instance picking, breaker accounting), route table, upstream groups
 *   observe/  metrics, access log, spans
 *
 * The route table, the stages and the upstream groups form a "generation"; `reload()` builds a
 * new one and swaps it atomically. Requests finish on the generation they started on.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Clock, Health, Logger, Metrics, Resolver, StatusRegistry } from '@trellis/core';
import { parseOptions } from '@trellis/core';
import { z } from 'zod';
import type { GatewayConfig } from './config/gatewayConfig.js';
import { GatewayRuntime } from './server/GatewayRuntime.js';
import { handleRequest } from './server/handleRequest.js';
import { attachUpgrade, servePlain } from './server/handleUpgrade.js';
import { type AdminRoutes, adminHandler, type Listening, listen } from './server/listen.js';

export type { AdminRoutes, Listening } from './server/listen.js';

/** Options that are objects, not config: injected dependencies. */
export interface GatewayOptions {
  /** Resolves `upstream.service` names (etcd, Consul, DNS, static...). */
  readonly resolver?: Resolver;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Wall-clock time (ms since the epoch) for JWT `exp`/`nbf`. Default `Date.now`. */
  readonly now?: () => number;
  /** Metrics registry holder; one is created when absent. */
  readonly metrics?: Metrics;
  /** Health checks served at /health*; one is created when absent. */
  readonly health?: Health;
  /** OpenTelemetry CLIENT span per upstream attempt and `traceparent` propagation. Default true. */
  readonly tracing?: boolean;
  /** How long `close()` waits for in-flight requests (and stuck dependencies). Default 10_000. */
  readonly closeTimeoutMs?: number;
  /**
   * Extension point of the admin listener: runs before `/health*` and `/metrics`; call `next()`
   * for paths it does not own (e.g. an `/admin/*` API).
   */
  readonly adminRoutes?: AdminRoutes;
  /**
   * The status registry the gateway's routes, upstream groups (instances with their breakers,
   * eject/restore), breakers and retry budgets register with; its admin API is served on the
   * admin listener. One (`service: 'gateway'`) is created when absent and closed by `close()`;
   * an injected one is left open (the gateway's entries unregister).
   */
  readonly status?: StatusRegistry;
}

/** A running gateway. */
export interface Gateway {
  /**
   * The request handler: `http.createServer(gateway.handler)`, `app.use(gateway.handler)`.
   * As Express middleware it never calls `next`: unmatched requests get a 404 problem+json.
   */
  readonly handler: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * The admin handler (`/metrics`, `/health*`, `adminRoutes`): what the admin listener serves.
   * An embedded gateway mounts it where the host app keeps internal endpoints.
   */
  readonly adminHandler: (req: IncomingMessage, res: ServerResponse) => void;
  /**
   * Starts a standalone server (with the limits of `config.limits`) and, with `admin.mode:
   * port` (the default), the admin listener on loopback: port 0 when `port` is 0, else
   * `admin.port` or 9901.
   */
  listen(port?: number, host?: string): Promise<Listening>;
  /** Stops accepting, lets in-flight requests finish, releases everything; within `closeTimeoutMs`. */
  close(): Promise<void>;
  /** Validates and swaps in a new config atomically; throws `ConfigError` and keeps the old one. */
  reload(config: unknown): void;
  /**
   * Takes WebSocket upgrades arriving at `server` for routes with `websocket: true`; any other
   * request with an `Upgrade` header is served as a plain request by `fallback` (default: this
   * gateway's handler). Returns a detach function.
   */
  attachUpgrade(
    server: Server,
    fallback?: (req: IncomingMessage, socket: import('node:stream').Duplex, head: Buffer) => void,
  ): () => void;
  /** The config in force. */
  readonly config: GatewayConfig;
  readonly metrics: Metrics;
  readonly health: Health;
  /** The status registry (the `status` option, or the one the gateway created). */
  readonly status: StatusRegistry;
}

const optionsSchema = z
  .object({
    resolver: z.custom<Resolver>((v) => typeof (v as Resolver)?.resolve === 'function').optional(),
    logger: z.custom<Logger>((v) => typeof (v as Logger)?.info === 'function').optional(),
    clock: z.custom<Clock>((v) => typeof (v as Clock)?.now === 'function').optional(),
    now: z.custom<() => number>((v) => typeof v === 'function').optional(),
    metrics: z.custom<Metrics>((v) => typeof (v as Metrics)?.text === 'function').optional(),
    health: z.custom<Health>((v) => typeof (v as Health)?.ready === 'function').optional(),
    tracing: z.boolean().optional(),
    closeTimeoutMs: z.number().int().min(0).optional(),
    adminRoutes: z.custom<AdminRoutes>((v) => typeof v === 'function').optional(),
    status: z
      .custom<StatusRegistry>(
        (v) =>
          typeof (v as StatusRegistry)?.register === 'function' &&
          typeof (v as StatusRegistry)?.snapshot === 'function',
        'must be a StatusRegistry from createStatusRegistry()',
      )
      .optional(),
  })
  .strict();

/**
 * Creates a gateway from a config (validated with zod; errors name the field).
 *
 * @example
 * ```ts
 * import { createGateway } from '@trellis/gateway';
 * const gateway = createGateway({
 *   routes: [{ path: '/api/users', stripPrefix: true, upstream: 'http://127.0.0.1:3001' }],
 * });
 * const { port, adminPort } = await gateway.listen(8080);
 * // later: await gateway.close();
 * ```
 */
export function createGateway(config: unknown, options: GatewayOptions = {}): Gateway {
  parseOptions(optionsSchema, options, 'createGateway');
  const rt = new GatewayRuntime(config, options);
  const handler = handleRequest(rt);
  const admin = adminHandler(rt, options.adminRoutes);
  return {
    handler,
    adminHandler: admin,
    listen: (port = 0, host) => listen(rt, handler, admin, port, host),
    close: () => rt.close(),
    reload: (next) => rt.reload(next),
    attachUpgrade(server, fallback) {
      const detach = attachUpgrade(
        rt,
        server,
        fallback ?? ((req, socket) => servePlain(req, socket, handler)),
      );
      rt.detach.push(detach);
      return detach;
    },
    get config() {
      return rt.config;
    },
    metrics: rt.metrics,
    health: rt.health,
    status: rt.status,
  };
}
