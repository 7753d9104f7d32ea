import type {
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  onSendHookHandler,
  preHandlerAsyncHookHandler,
} from 'fastify';
import fp from 'fastify-plugin';
import { PROBLEM_CONTENT_TYPE } from '../problem/Problem.js';
import {
  createIdempotency,
  type Idempotency,
  type IdempotencyClaim,
  type IdempotencyOptions,
  type IdempotencyReply,
} from './createIdempotency.js';

export type IdempotencyFastifyPlugin = FastifyPluginCallback & {
  /** The engine, shared with `serve(..., { idempotency })`. */
  readonly engine: Idempotency;
  /** The two hooks, for one route: `app.post('/orders', { ...idem.hooks }, handler)`. */
  readonly hooks: { preHandler: preHandlerAsyncHookHandler; onSend: onSendHookHandler };
};

/**
 * `idempotency()` for Fastify 5: a plugin (wrapped with `fastify-plugin`, so it covers the
 * routes of the context it is registered in: the whole app at the root, or one encapsulated
 * scope), plus `.hooks` for a single route. `scope(req)` receives `request.raw`.
 */
export function fastifyIdempotency(
  options: IdempotencyOptions | Idempotency = {},
): IdempotencyFastifyPlugin {
  const engine =
    typeof (options as Idempotency).begin === 'function'
      ? (options as Idempotency)
      : createIdempotency(options as IdempotencyOptions);
  const { maxBodyBytes, methods, required } = engine.options;
  const claims = new WeakMap<FastifyRequest, IdempotencyClaim>();

  const preHandler = async function (this: unknown, request: FastifyRequest, reply: FastifyReply) {
    if (
      !methods.has(request.method) ||
      (request.headers['idempotency-key'] === undefined && !required)
    ) {
      return;
    }
    const b = await engine.begin({ req: request.raw, target: request.url, body: request.body });
    if (b.kind === 'pass') return;
    if (b.kind === 'reply') {
      sendReply(reply, b.reply);
      return reply;
    }
    const claim = b.claim;
    claims.set(request, claim);
    reply.raw.once('close', () => {
      if (!claim.settled) claim.abandon();
    });
    return;
  } as preHandlerAsyncHookHandler;

  const onSend = async function (
    this: unknown,
    request: FastifyRequest,
    reply: FastifyReply,
    payload: unknown,
  ) {
    const claim = claims.get(request);
    if (claim === undefined || claim.settled) return payload;
    let body: Uint8Array | undefined;
    if (payload === undefined || payload === null) body = new Uint8Array(0);
    else if (typeof payload === 'string') body = Buffer.from(payload);
    else if (payload instanceof Uint8Array) body = payload;
    if (body !== undefined && body.byteLength > maxBodyBytes) body = undefined;
    await claim.finish({ status: reply.statusCode, headers: reply.getHeaders(), body });
    return payload;
  } as onSendHookHandler;

  const plugin: FastifyPluginCallback = (fastify, _opts, done) => {
    fastify.addHook('preHandler', preHandler);
    fastify.addHook('onSend', onSend);
    fastify.addHook('onClose', (_i, next) => {
      if (typeof (options as Idempotency).begin !== 'function') engine.close();
      next();
    });
    done();
  };
  return Object.assign(fp(plugin, { fastify: '5.x' }), { engine, hooks: { preHandler, onSend } });
}

function sendReply(reply: FastifyReply, r: IdempotencyReply): void {
  reply.code(r.status);
  for (const [k, v] of Object.entries(r.headers)) reply.header(k, v);
  if (r.problem !== undefined) {
    reply.header('content-type', PROBLEM_CONTENT_TYPE).header('cache-control', 'no-store');
    reply.send(Buffer.from(JSON.stringify(r.problem)));
    return;
  }
  reply.send(Buffer.from(r.body ?? new Uint8Array(0)));
}
