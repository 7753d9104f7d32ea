/**
 * `@trellis/gateway/fastify`: mounts a gateway in a Fastify app. The plugin is encapsulated: it
 * replaces the content-type parsers of its own context with a pass-through, so request bodies
 * stream to the upstream untouched; when a parser of the host app already consumed the body,
 * the gateway re-serialises `request.body` (or answers 400, never hangs). WebSocket upgrades of
 * the Fastify server are proxied for the gateway's own routes with `websocket: true` only; any
 * other request with an `Upgrade` header (`Upgrade: h2c`, a WebSocket for the host app) is left
 * to another `upgrade` listener when there is one (e.g. @fastify/websocket), and otherwise
 * served by the Fastify app as a plain request, its connection closed after the answer.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { createGateway } from '@trellis/gateway';
 * import { trellisGateway } from '@trellis/gateway/fastify';
 *
 * const gateway = createGateway({ routes: [{ path: '/api', upstream: { urls: ['http://127.0.0.1:3001'] } }] });
 * const app = Fastify();
 * await app.register(trellisGateway, { gateway, closeWithApp: true });
 * await app.listen({ port: 8080 });
 * ```
 */
import type { IncomingMessage } from 'node:http';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { Gateway } from './createGateway.js';
import { servePlain } from './server/handleUpgrade.js';

export interface TrellisGatewayPluginOptions {
  /** The gateway to mount (from `createGateway`). */
  readonly gateway: Gateway;
  /** Close the gateway when the Fastify app closes. Default false. */
  readonly closeWithApp?: boolean;
  /** Proxy WebSocket upgrades arriving at the Fastify server. Default true. */
  readonly upgrades?: boolean;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** The Fastify plugin. Register it with a `prefix` to mount the gateway under a path. */
export const trellisGateway: FastifyPluginAsync<TrellisGatewayPluginOptions> = async (
  fastify,
  opts,
) => {
  const gateway = opts.gateway;
  if (gateway === undefined || typeof gateway.handler !== 'function') {
    throw new TypeError(
      'trellisGateway: the gateway option must be a Gateway from createGateway()',
    );
  }
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (_req, _payload, done) => done(null));
  const handler = (request: FastifyRequest, reply: FastifyReply): void => {
    reply.hijack();
    const raw = request.raw as IncomingMessage & { body?: unknown };
    if (request.body !== undefined && request.body !== null) raw.body = request.body;
    gateway.handler(raw, reply.raw);
  };
  fastify.route({ method: [...METHODS], url: '/', handler });
  fastify.route({ method: [...METHODS], url: '/*', handler });
  const server = fastify.server;
  const detach =
    opts.upgrades === false
      ? undefined
      : gateway.attachUpgrade(server, (req, socket) => {
          // Another upgrade listener (the host app's WebSocket plugin) owns it.
          if (server.listenerCount('upgrade') > 1) return;
          servePlain(req, socket, (rq, rs) => server.emit('request', rq, rs));
        });
  fastify.addHook('onClose', async () => {
    detach?.();
    if (opts.closeWithApp === true) await gateway.close();
  });
};

export default trellisGateway;
