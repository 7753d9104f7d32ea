/**
 * The standalone listeners: the gateway server (with the header-size and slowloris limits of
 * `config.limits`, answers for what the parser refuses, CONNECT and upgrades) and the admin
 * listener (loopback, its own port: `/metrics`, `/health*`, and the `adminRoutes` extension
 * point for an admin API mounted later).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  createObservabilityHandler,
  type ObservabilityHandler,
  problem,
  ShutdownError,
  writeProblem,
} from '@trellis/core';
import { RouteNotFoundError } from '../errors.js';
import { onClientError, onConnect } from './framing.js';
import type { GatewayRuntime } from './GatewayRuntime.js';
import { attachUpgrade, servePlain } from './handleUpgrade.js';

/** A handler mounted on the admin listener before the built-in endpoints; calls `next` to pass. */
export type AdminRoutes = (req: IncomingMessage, res: ServerResponse, next: () => void) => void;

/** The default admin port of a gateway whose main port is not 0 (not Prometheus' 9090). */
export const DEFAULT_ADMIN_PORT = 9901;

/** The admin handler: `adminRoutes` first, then `/admin/*`, `/health*` and `/metrics`, else 404. */
export function adminHandler(
  rt: GatewayRuntime,
  adminRoutes: AdminRoutes | undefined,
): (req: IncomingMessage, res: ServerResponse) => void {
  const observe = createObservabilityHandler({ health: rt.health, metrics: rt.metrics });
  const builtIn = (req: IncomingMessage, res: ServerResponse): void => {
    // The admin API and status page: on the admin listener only, never on the gateway port.
    const api = rt.adminApi();
    if (api?.matches(req.url ?? '')) {
      api(req, res);
      return;
    }
    if (observe(req, res)) return;
    const path = (req.url ?? '').split('?', 1)[0];
    writeProblem(
      res,
      problem({ status: 404, code: RouteNotFoundError.code, detail: `not an admin path: ${path}` }),
    );
  };
  if (adminRoutes === undefined) return builtIn;
  return (req, res) => adminRoutes(req, res, () => builtIn(req, res));
}

/** `/health*` always, `/metrics` only with `admin.mode: gateway`: on the gateway port. */
export function gatewayObserve(rt: GatewayRuntime): ObservabilityHandler {
  const healthOnly = createObservabilityHandler({ health: rt.health });
  const both = createObservabilityHandler({ health: rt.health, metrics: rt.metrics });
  return (req, res) => {
    const url = req.url ?? '';
    if (url.charCodeAt(1) !== 104 && url.charCodeAt(1) !== 109) return false; // not /h..., /m...
    return (rt.current.config.admin.mode === 'gateway' ? both : healthOnly)(req, res);
  };
}

export interface Listening {
  readonly port: number;
  readonly host: string;
  /** The admin listener's port (`admin.mode: port`), else undefined. */
  readonly adminPort: number | undefined;
}

export async function listen(
  rt: GatewayRuntime,
  handler: (req: IncomingMessage, res: ServerResponse) => void,
  admin: (req: IncomingMessage, res: ServerResponse) => void,
  port: number,
  host: string | undefined,
): Promise<Listening> {
  if (rt.closing) throw new ShutdownError('gateway: closed');
  const limits = rt.config.limits;
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      connectionsCheckingInterval: Math.min(1_000, Math.max(50, limits.headersTimeoutMs / 4)),
      requireHostHeader: true,
    },
    handler,
  );
  server.on('clientError', onClientError);
  server.on('connect', onConnect);
  rt.detach.push(attachUpgrade(rt, server, (req, socket) => servePlain(req, socket, handler)));
  await start(rt, server, port, host);
  const addr = server.address() as AddressInfo;
  let adminPort: number | undefined;
  const a = rt.config.admin;
  if (a.mode === 'port') {
    const adminServer = createServer(admin);
    await start(rt, adminServer, a.port ?? (port === 0 ? 0 : DEFAULT_ADMIN_PORT), a.host);
    adminPort = (adminServer.address() as AddressInfo).port;
  }
  return { port: addr.port, host: addr.address, adminPort };
}

async function start(
  rt: GatewayRuntime,
  server: Server,
  port: number,
  host: string | undefined,
): Promise<void> {
  rt.servers.add(server);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}
