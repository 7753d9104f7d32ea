/**
 * The only chain runner (in the spirit of hono's `compose` and Envoy's filter chain, where the
 * router is the last filter): `compose(stages, terminal)` returns one handler that runs each
 * stage with a `next` that runs the rest, and the terminal (the HTTP proxy or the WebSocket
 * tunnel) last. A stage that answered (401, 429, preflight) simply does not call `next`.
 * With no stages it returns the terminal itself: the promise-free fast path.
 */
import type { GatewayMiddleware } from './GatewayMiddleware.js';
import type { RequestContext } from './RequestContext.js';

/** The last link: owns the request from here on. May return a promise (awaited by `next`). */
export type Terminal = (ctx: RequestContext) => void | Promise<void>;

/** A composed chain. A thrown or rejected error is the caller's to answer (`replyError`). */
export type Handler = (ctx: RequestContext) => void | Promise<void>;

const DONE = Promise.resolve();

export function compose(stages: readonly GatewayMiddleware[], terminal: Terminal): Handler {
  if (stages.length === 0) return terminal;
  const n = stages.length;
  return (ctx) => {
    let index = -1;
    const dispatch = (i: number): Promise<void> => {
      if (i <= index) return Promise.reject(new Error('gateway stage called next() twice'));
      index = i;
      if (ctx.answered || ctx.done) return DONE;
      try {
        if (i === n) return terminal(ctx) ?? DONE;
        return (stages[i] as GatewayMiddleware)(ctx, () => dispatch(i + 1));
      } catch (err) {
        return Promise.reject(err);
      }
    };
    return dispatch(0);
  };
}
