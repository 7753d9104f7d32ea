import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import {
  AdminClosingError,
  AdminMethodError,
  AdminNotFoundError,
  AdminUnauthorizedError,
  type ConfigError,
  ShedError,
} from '../errors.js';
import { type Logger, silentLogger } from '../Logger.js';
import { configError, parseOptions } from '../options.js';
import { problemOf, writeProblem } from '../problem/Problem.js';
import type { StatusRegistry } from '../status/createStatusRegistry.js';
import type { StatusSource } from '../status/StatusSource.js';
import { ADMIN_PAGE_HTML } from './adminPage.js';

export interface AdminOptions {
  /** The service's status registry: what the API shows and controls. */
  status: StatusRegistry;
  /**
   * Bearer token(s) every request except the page itself must carry
   * (`Authorization: Bearer <token>`), compared in constant time. A record maps a principal
   * (logged as `who`) to its token. At least 16 characters each.
   */
  token?: string | Readonly<Record<string, string>>;
  /**
   * Serve without a token. Only for a listener of its own (`createAdminServer`, loopback by
   * default): a loopback peer proves nothing behind a proxy or a sidecar. Default false.
   */
  unauthenticated?: boolean;
  /** Where the API lives. Default `/admin`. */
  basePath?: string;
  /** Receives one line per control action (who, what, from where). */
  logger?: Logger;
  /** How often `/admin/events` sends a full snapshot. Default 1000 ms. */
  snapshotIntervalMs?: number;
  /** At most this many open event streams; more answer 503. Default 32. */
  maxStreams?: number;
}

/** A plain node request handler, mountable on any server, plus what the adapters need. */
export interface AdminHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** True when `url` is under the admin base path (the adapters route by it). */
  matches(url: string): boolean;
  /** The base path it serves, e.g. `/admin`. */
  readonly basePath: string;
  /** Event streams open now. */
  readonly streams: number;
  /** Ends every event stream (the registry's `close()` does it too). */
  close(): void;
}

const tokenField = z.string().min(16, 'use at least 16 characters').max(4096);

export const adminOptionsSchema = z.strictObject({
  status: z.custom<StatusRegistry>(
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as StatusRegistry).snapshot === 'function' &&
      typeof (v as StatusRegistry).onEvent === 'function',
    'must be a StatusRegistry from createStatusRegistry()',
  ),
  token: z
    .union([
      tokenField,
      z
        .record(
          z.string().regex(/^[\w.@:-]{1,100}$/, 'principal names: letters, digits, _ . @ : -'),
          tokenField,
        )
        .refine((r) => Object.keys(r).length > 0, 'give at least one token'),
    ])
    .optional(),
  unauthenticated: z.boolean().default(false),
  basePath: z
    .string()
    .regex(/^(\/[^/?#]+)+$/, 'must start with "/" and not end with "/"')
    .default('/admin'),
  logger: z
    .custom<Logger>(
      (v) => typeof v === 'object' && v !== null && typeof (v as Logger).info === 'function',
      'must be a pino-compatible logger',
    )
    .optional(),
  snapshotIntervalMs: z.number().int().min(50).max(60_000).default(1000),
  maxStreams: z.number().int().min(1).max(10_000).default(32),
});

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();

/** The principal a bearer token belongs to, checking every token in constant time. */
function principalOf(header: string | undefined, tokens: [string, Buffer][]): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer[ \t]+([\x21-\x7e]+)[ \t]*$/i.exec(header);
  if (m === null) return undefined;
  const given = digest(m[1] as string);
  let who: string | undefined;
  for (const [name, expected] of tokens) {
    // No early exit: the time taken does not depend on which token matched.
    if (timingSafeEqual(given, expected) && who === undefined) who = name;
  }
  return who;
}

function segmentsOf(path: string): string[] | undefined {
  try {
    return path
      .split('/')
      .filter((s) => s !== '')
      .map((s) => decodeURIComponent(s));
  } catch {
    return undefined;
  }
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/**
 * The admin API and status page as one plain node handler: `GET /admin/` (the page),
 * `GET /admin/status`, `GET /admin/events` (SSE), `POST /admin/breakers/{name}/isolate|reset`,
 * `POST /admin/services/{service}/instances/{id}/eject|restore`. Mount it on a listener of its
 * own (`createAdminServer`) or pass a `token`; docs/operations.md gives the schema.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createAdminHandler, createStatusRegistry } from '@trellis/core';
 * const status = createStatusRegistry({ service: 'orders' });
 * const admin = createAdminHandler({ status, token: process.env.ADMIN_TOKEN ?? 'change-me-0123456789' });
 * createServer((req, res) => (admin.matches(req.url ?? '') ? admin(req, res) : res.end('hi'))).listen(0);
 * ```
 */
export function createAdminHandler(options: AdminOptions): AdminHandler {
  const opts = parseOptions(adminOptionsSchema, options, 'createAdminHandler');
  if (opts.token === undefined && !opts.unauthenticated) {
    throw parseError();
  }
  const status = opts.status;
  const logger = opts.logger ?? silentLogger;
  const base = opts.basePath;
  const tokens: [string, Buffer][] =
    opts.token === undefined
      ? []
      : typeof opts.token === 'string'
        ? [['token', digest(opts.token)]]
        : Object.entries(opts.token).map(([who, t]) => [who, digest(t)]);
  const streams = new Set<(reason: string) => void>();

  const matches = (url: string): boolean =>
    url === base || url.startsWith(`${base}/`) || url.startsWith(`${base}?`);

  const fail = (
    req: IncomingMessage,
    res: ServerResponse,
    err: unknown,
    headers?: Record<string, string>,
  ) => {
    const requestId = req.headers['x-request-id'];
    writeProblem(res, problemOf(err, typeof requestId === 'string' ? { requestId } : {}), headers);
  };

  const handler = ((req: IncomingMessage, res: ServerResponse) => {
    try {
      route(req, res);
    } catch (err) {
      logger.error({ err }, 'admin: request failed');
      fail(req, res, err);
    }
  }) as AdminHandler;

  function route(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    if (!matches(path)) {
      fail(req, res, new AdminNotFoundError(`no admin path ${JSON.stringify(path.slice(0, 200))}`));
      return;
    }
    const method = req.method ?? 'GET';
    const read = method === 'GET' || method === 'HEAD';
    if (path === base) {
      res.statusCode = 308;
      res.setHeader('location', `${base}/`);
      res.end();
      return;
    }
    const rest = path.slice(base.length);
    // The page holds no data (it asks for the token and fetches with it), so it is served as is.
    if (rest === '/' || rest === '/index.html') {
      if (!read) {
        methodNotAllowed(req, res, 'GET, HEAD');
        return;
      }
      res.statusCode = 200;
      res.setHeader('content-type', 'text/html; charset=utf-8');
      res.setHeader('cache-control', 'no-store');
      res.setHeader(
        'content-security-policy',
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
      );
      res.setHeader('x-content-type-options', 'nosniff');
      res.end(method === 'HEAD' ? undefined : ADMIN_PAGE_HTML);
      return;
    }
    let who = 'local';
    if (tokens.length > 0) {
      const p = principalOf(req.headers.authorization, tokens);
      if (p === undefined) {
        fail(
          req,
          res,
          new AdminUnauthorizedError(
            req.headers.authorization === undefined
              ? 'the admin API needs "Authorization: Bearer <token>"'
              : 'the bearer token is not valid',
          ),
          { 'www-authenticate': 'Bearer realm="trellis-admin"' },
        );
        return;
      }
      who = p;
    }
    const segments = segmentsOf(rest);
    if (segments === undefined) {
      fail(req, res, new AdminNotFoundError('the path has a malformed percent-encoding'));
      return;
    }
    if (segments.length === 1 && segments[0] === 'status') {
      if (!read) {
        methodNotAllowed(req, res, 'GET, HEAD');
        return;
      }
      sendJson(res, 200, status.snapshot());
      return;
    }
    if (segments.length === 1 && segments[0] === 'events') {
      if (!read) {
        methodNotAllowed(req, res, 'GET, HEAD');
        return;
      }
      openStream(req, res);
      return;
    }
    const action = segments.at(-1);
    if (
      segments[0] === 'breakers' &&
      segments.length >= 3 &&
      (action === 'isolate' || action === 'reset')
    ) {
      if (method !== 'POST') {
        methodNotAllowed(req, res, 'POST');
        return;
      }
      const name = segments.slice(1, -1).join('/');
      const source = status.get(name, 'breaker');
      if (source === undefined || typeof source[action] !== 'function') {
        fail(req, res, new AdminNotFoundError(`no breaker named ${JSON.stringify(name)}`));
        return;
      }
      control(
        req,
        res,
        who,
        action,
        name,
        () => {
          source[action]?.();
          return true;
        },
        source,
      );
      return;
    }
    const at = segments.lastIndexOf('instances');
    if (
      segments[0] === 'services' &&
      at >= 2 &&
      at === segments.length - 3 &&
      (action === 'eject' || action === 'restore')
    ) {
      if (method !== 'POST') {
        methodNotAllowed(req, res, 'POST');
        return;
      }
      const service = segments.slice(1, at).join('/');
      const id = segments[at + 1] as string;
      const source = status.get(service, 'service') ?? status.get(service, 'upstream');
      if (source === undefined || typeof source[action] !== 'function') {
        fail(req, res, new AdminNotFoundError(`no service named ${JSON.stringify(service)}`));
        return;
      }
      control(
        req,
        res,
        who,
        action,
        `${service}/${id}`,
        () => source[action]?.(id) === true,
        source,
        id,
      );
      return;
    }
    fail(req, res, new AdminNotFoundError(`no admin path ${JSON.stringify(path.slice(0, 200))}`));
  }

  function methodNotAllowed(req: IncomingMessage, res: ServerResponse, allow: string): void {
    fail(req, res, new AdminMethodError(`use ${allow.replace(', HEAD', '')} here`), { allow });
  }

  function control(
    req: IncomingMessage,
    res: ServerResponse,
    who: string,
    action: string,
    target: string,
    apply: () => boolean,
    source: StatusSource,
    instance?: string,
  ): void {
    req.resume(); // the body is not used; drain it so the connection can be reused
    const peer = req.socket.remoteAddress ?? 'unknown';
    if (status.closing) {
      logger.warn(
        { admin: { who, peer, action, target, applied: false } },
        `admin: ${action} ${target} refused: the service is shutting down`,
      );
      fail(
        req,
        res,
        new AdminClosingError(`the service is shutting down; ${action} was not applied`),
      );
      return;
    }
    if (!apply()) {
      fail(
        req,
        res,
        new AdminNotFoundError(
          `no instance ${JSON.stringify(instance)} in ${JSON.stringify(target.slice(0, target.length - (instance?.length ?? 0) - 1))}`,
        ),
      );
      return;
    }
    logger.warn({ admin: { who, peer, action, target } }, `admin: ${who} ${action} ${target}`);
    const name =
      instance === undefined ? target : target.slice(0, target.length - instance.length - 1);
    status.emit(
      name,
      {
        type: 'control',
        severity: 'warn',
        message: `${action}${instance === undefined ? '' : ` ${instance}`} by ${who}`,
        data: { action, who, ...(instance !== undefined && { instance }) },
      },
      source.kind,
    );
    sendJson(res, 200, { action, target, who, status: source.snapshot() });
  }

  function openStream(req: IncomingMessage, res: ServerResponse): void {
    if (streams.size >= opts.maxStreams) {
      fail(
        req,
        res,
        new ShedError(`at most ${opts.maxStreams} event streams`, {
          reason: 'admin-streams',
          retryAfterMs: 5000,
        }),
        { 'retry-after': '5' },
      );
      return;
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let pending: NodeJS.Timeout | undefined;
    const sendSnapshot = () => {
      pending = undefined;
      if (res.writableNeedDrain) return; // a slow reader skips snapshots, never blocks us
      res.write(`event: snapshot\ndata: ${JSON.stringify(status.snapshot())}\n\n`);
    };
    const interval = setInterval(sendSnapshot, opts.snapshotIntervalMs);
    interval.unref();
    const offEvent = status.onEvent((e) => {
      // A reader that cannot keep up misses events too; the next snapshot carries the recent
      // ones, so the page's timeline catches up. Memory stays bounded either way.
      if (res.writableNeedDrain) return;
      res.write(`event: status\nid: ${e.seq}\ndata: ${JSON.stringify(e)}\n\n`);
      // A fresh picture soon after a change, but at most one per 100 ms.
      pending ??= setTimeout(sendSnapshot, 100);
      pending.unref?.();
    });
    const end = (reason: string) => {
      if (!streams.delete(end)) return;
      clearInterval(interval);
      if (pending !== undefined) clearTimeout(pending);
      offEvent();
      offClose();
      if (!res.writableEnded && !res.destroyed) {
        res.end(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
      }
    };
    const offClose = status.onClose(() => end('shutdown'));
    streams.add(end);
    res.on('close', () => end('client'));
    res.write(`retry: 2000\n\n`);
    sendSnapshot();
    if (status.closed) end('shutdown');
  }

  handler.matches = matches;
  Object.defineProperty(handler, 'basePath', { value: base });
  Object.defineProperty(handler, 'streams', { get: () => streams.size });
  handler.close = () => {
    for (const end of [...streams]) end('shutdown');
  };
  return handler;
}

function parseError(): ConfigError {
  const message =
    'give a token, or unauthenticated: true for a listener of its own (createAdminServer)';
  return configError('createAdminHandler', [{ path: 'token', message }]);
}
