import { isStreamResponse } from '../contract/stream.js';
import { parseOptions } from '../options.js';
import { ClientCore } from './ClientCore.js';
import { ClientStreams } from './ClientStreams.js';
import { type ClientOptions, clientOptionsSchema } from './clientOptions.js';
import { compileEndpoint } from './compileEndpoint.js';
import type { EndpointDefinition, EndpointMap, EndpointMethod } from './endpoint.js';
import type { CallInput } from './prepareRequest.js';

export type {
  BaseUrlClientOptions,
  ClientOptions,
  ClientOptionsBase,
  ServiceClientOptions,
} from './clientOptions.js';

/**
 * A typed client: one method per endpoint, plus `close()`.
 *
 * @example
 * ```ts
 * const api = defineEndpoints({ getItem: { method: 'GET', path: '/items/:id', response: Item } });
 * let items: Client<typeof api>;
 * ```
 */
export type Client<E extends EndpointMap> = { readonly [K in keyof E]: EndpointMethod<E[K]> } & {
  /** Stops new calls, lets in-flight ones finish, closes every pool and the discovery watch. */
  close(): Promise<void>;
};

const NO_INPUT: CallInput = {};

/**
 * Creates a typed HTTP client from zod endpoint definitions: one method per endpoint, inputs
 * validated before any I/O, responses parsed and validated, over keep-alive undici pools.
 *
 * @example
 * ```ts
 * import { createClient } from '@trellis/core';
 * import { z } from 'zod';
 *
 * const Item = z.object({ id: z.string(), name: z.string() });
 * const items = createClient({
 *   baseUrl: 'http://items.internal:8080',
 *   endpoints: {
 *     getItem: { method: 'GET', path: '/items/:id', response: { 200: Item, 404: z.object({ error: z.string() }) } },
 *     createItem: { method: 'POST', path: '/items', body: Item.omit({ id: true }), response: Item },
 *   },
 *   timeoutMs: 2_000,
 * });
 * const res = await items.getItem({ params: { id: '42' } });
 * if (res.status === 200) console.log(res.body.name);
 * const created = await items.createItem({ body: { name: 'lamp' } });
 * await items.close();
 * ```
 */
export function createClient<const E extends EndpointMap>(options: ClientOptions<E>): Client<E> {
  const o = parseOptions(clientOptionsSchema, options, 'createClient');
  const core = new ClientCore(o);
  // Streams share the core's pools, discovery watch, policy, tracer and metrics.
  const streams = new ClientStreams(o, core.shared);
  const client: Record<string, unknown> = {
    // Cut the open streams first: the pools wait for their requests before closing.
    close: () => {
      streams.close();
      return core.close();
    },
  };
  for (const name of Object.keys(o.endpoints)) {
    const def = o.endpoints[name] as EndpointDefinition;
    if (isStreamResponse(def.response)) {
      // sse()/ndjson() endpoints return an AsyncIterable of validated items (ClientStreams).
      client[name] = streams.method(name, def);
      continue;
    }
    const compiled = compileEndpoint(name, def, o.idempotencyKey);
    client[name] = (input?: CallInput) => core.call(compiled, input ?? NO_INPUT);
  }
  return client as Client<E>;
}
