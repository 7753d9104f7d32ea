import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EndpointMap } from '../../contract/endpoint.js';
import { Contract } from './compileContract.js';
import { createNodeHandler } from './createNodeHandler.js';
import type { Handlers } from './Handlers.js';
import type { ServeOptions } from './serveOptions.js';

/** The request an Express handler of a served contract gets (an Express `Request` fits). */
export interface ExpressServeRequest extends IncomingMessage {
  baseUrl?: string;
  originalUrl?: string;
}

/** What `serve` returns for Express: a router-like middleware to `app.use(...)`. */
export type ContractRouter = (
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void;

/**
 * Serves a contract on Express 4 or 5: one handler per endpoint, each request validated
 * (400 problem+json naming each field), undeclared methods 405 with `Allow`, answers checked
 * against the contract (500 on a violation, logged), errors as problem+json. It reads JSON
 * bodies itself (1 MiB `bodyLimit`); mount it without `express.json()` in front (a body that
 * `express.json()` already parsed is used as is, but its errors are Express's).
 *
 * @example
 * ```ts
 * import express from 'express';
 * import { defineEndpoints } from '@trellis/core';
 * import { serve } from '@trellis/core/express';
 * import { z } from 'zod';
 *
 * const api = defineEndpoints({
 *   getItem: { method: 'GET', path: '/items/:id', response: z.object({ id: z.string() }) },
 * });
 * const app = express();
 * app.use(serve(api, { getItem: async ({ params }) => ({ status: 200, body: { id: params.id } }) }));
 * ```
 */
export function serve<const M extends EndpointMap>(
  endpoints: M,
  handlers: Handlers<M, ExpressServeRequest>,
  options?: ServeOptions,
): ContractRouter {
  const contract = new Contract('serve (express)', endpoints, handlers, options);
  return createNodeHandler(contract) as ContractRouter;
}
