/**
 * Per-route header transforms. Request edits go into the context (`upstreamHeaders`,
 * `removeUpstreamHeaders`) and are applied by the proxy core BEFORE it strips hop-by-hop
 * headers, so a transform can never re-add `Connection` or `Transfer-Encoding`. Response edits
 * apply to the upstream's response (and `set` also to gateway error answers).
 */
import { z } from 'zod';
import type { GatewayMiddleware } from '../chain/GatewayMiddleware.js';
import { headerNameSchema, headerValueSchema } from './headerUtil.js';

const editSchema = z
  .object({
    set: z
      .record(headerNameSchema, headerValueSchema)
      .default({})
      .describe('Headers to set (replacing any existing value).'),
    remove: z.array(headerNameSchema).default([]).describe('Headers to remove.'),
  })
  .strict()
  .prefault({});

export const headerTransformsSchema = z
  .object({
    request: editSchema.describe('Edits to the request sent upstream.'),
    response: editSchema.describe('Edits to the response sent to the client.'),
  })
  .strict()
  .describe('Header transforms for this route.');

export type HeaderTransformsConfig = z.output<typeof headerTransformsSchema>;

export function headerTransformsMiddleware(config: HeaderTransformsConfig): GatewayMiddleware {
  const reqSet = Object.entries(config.request.set);
  const reqRemove = config.request.remove;
  const resSet = Object.entries(config.response.set);
  const resRemove = new Set(config.response.remove);
  const hook =
    resRemove.size > 0 || resSet.length > 0
      ? (_status: number, headers: Record<string, string | string[]>) => {
          for (const name of Object.keys(headers)) {
            if (resRemove.has(name.toLowerCase())) delete headers[name];
          }
          for (const [name, value] of resSet) headers[name] = value;
        }
      : undefined;
  return (ctx, next) => {
    for (const name of reqRemove) ctx.removeUpstreamHeaders.add(name);
    for (const [name, value] of reqSet) {
      ctx.upstreamHeaders[name] = value;
      ctx.removeUpstreamHeaders.delete(name);
    }
    for (const [name, value] of resSet) ctx.responseHeaders[name] = value;
    if (hook) ctx.onUpstreamResponse(hook);
    return next();
  };
}
