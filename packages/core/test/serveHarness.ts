import { once } from 'node:events';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import express5 from 'express';
import Fastify, { type FastifyInstance } from 'fastify';
import type { EndpointMap } from '../src/contract/endpoint.js';
import { serve as serveExpress } from '../src/express.js';
import { problemFrameworkErrors, serve as serveFastify } from '../src/fastify.js';
import type { Logger } from '../src/Logger.js';
import type { ServeOptions } from '../src/server/serve/serveOptions.js';

// Express 4 is installed under the npm alias `express4` (same API shape).
export const express4 = createRequire(import.meta.url)('express4') as typeof express5;

export type Flavour = 'Express 5' | 'Express 4' | 'Fastify';
export const FLAVOURS: Flavour[] = ['Express 5', 'Express 4', 'Fastify'];

export interface Served {
  base: string;
  close(): Promise<void>;
}

/** A logger that keeps every line, to assert on what was logged. */
export function memoryLogger(): Logger & {
  lines: { level: string; obj: unknown; msg?: string }[];
} {
  const lines: { level: string; obj: unknown; msg?: string }[] = [];
  const at =
    (level: string) =>
    (obj: unknown, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  return { lines, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}

/**
 * Starts a real app of the flavour on port 0 serving `endpoints` with `handlers` (typed loosely:
 * the type tests check the typed entry points).
 */
export async function startServed(
  flavour: Flavour,
  endpoints: EndpointMap,
  handlers: Record<string, (input: never) => unknown>,
  options?: ServeOptions,
): Promise<Served> {
  if (flavour === 'Fastify') {
    const app: FastifyInstance = Fastify({ frameworkErrors: problemFrameworkErrors });
    await app.register(serveFastify(endpoints, handlers as never, options));
    await app.listen({ port: 0, host: '127.0.0.1' });
    const { port } = app.server.address() as AddressInfo;
    return { base: `http://127.0.0.1:${port}`, close: () => app.close() };
  }
  const express = flavour === 'Express 5' ? express5 : express4;
  const app = express();
  app.use(serveExpress(endpoints, handlers as never, options));
  const server: Server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
