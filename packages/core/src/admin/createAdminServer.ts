import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { AdminNotFoundError } from '../errors.js';
import { parseOptions } from '../options.js';
import { problemOf, writeProblem } from '../problem/Problem.js';
import {
  type AdminHandler,
  type AdminOptions,
  adminOptionsSchema,
  createAdminHandler,
} from './createAdminHandler.js';

export interface AdminServerOptions extends Omit<AdminOptions, 'unauthenticated'> {
  /** Interface to listen on. Default `127.0.0.1` (loopback only). */
  host?: string;
  /** Port; default 0 (any free port). */
  port?: number;
}

/** The admin API on a listener of its own. */
export interface AdminServer {
  readonly handler: AdminHandler;
  readonly server: Server;
  /** Starts listening; resolves with the page's URL, e.g. `http://127.0.0.1:9464/admin/`. */
  listen(): Promise<{ port: number; host: string; url: string }>;
  /** Ends the event streams and closes the listener. */
  close(): Promise<void>;
}

const schema = adminOptionsSchema.omit({ unauthenticated: true }).extend({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(0),
});

/**
 * Serves the admin API and status page on a listener of its own, on loopback by default. Without
 * a `token` it serves anyone who can reach that listener: keep it off public interfaces.
 *
 * @example
 * ```ts
 * import { createAdminServer, createStatusRegistry } from '@trellis/core';
 * const admin = createAdminServer({ status: createStatusRegistry({ service: 'orders' }) });
 * const { url } = await admin.listen();
 * console.log(`status page: ${url}`);
 * await admin.close();
 * ```
 */
export function createAdminServer(options: AdminServerOptions): AdminServer {
  const { host, port, ...rest } = parseOptions(schema, options, 'createAdminServer');
  const handler = createAdminHandler({ ...rest, unauthenticated: rest.token === undefined });
  const base = rest.basePath;
  const server = createServer((req, res) => {
    if (handler.matches(req.url ?? '/')) handler(req, res);
    else if (req.url === '/') {
      res.statusCode = 302;
      res.setHeader('location', `${base}/`);
      res.end();
    } else
      writeProblem(
        res,
        problemOf(new AdminNotFoundError(`not found; the status page is at ${base}/`)),
      );
  });
  return {
    handler,
    server,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const a = server.address() as AddressInfo;
          const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
          resolve({ port: a.port, host: a.address, url: `http://${h}:${a.port}${base}/` });
        });
      }),
    close: () =>
      new Promise((resolve) => {
        handler.close();
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
