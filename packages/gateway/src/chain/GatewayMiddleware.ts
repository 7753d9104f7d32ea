import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, Logger, TrellisError } from '@trellis/core';

/** Who the caller is, once an auth middleware has verified it. */
export interface GatewayIdentity {
  /** JWT `sub`, or the API key's configured name. */
  readonly subject: string;
  readonly method: 'jwt' | 'apiKey';
  readonly claims?: Readonly<Record<string, unknown>>;
  readonly scopes?: readonly string[];
}

/**
 * What a route middleware sees for one request. The proxy stage (last in the chain) reads
 * `upstreamHeaders`, `responseHeaders`, `identity` and the `onUpstreamResponse` hooks.
 */
export interface GatewayRequestContext {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** Canonical, decoded, validated path: the one used for matching, auth and the upstream URL. */
  readonly path: string;
  /** Raw query string including the leading `?`, or `''`. */
  readonly search: string;
  /** The matched route's id (its `name`, or `routes[i]`). */
  readonly routeId: string;
  /** Path parameters from a pattern route (`/orders/:id`). */
  readonly params: Readonly<Record<string, string>>;
  readonly requestId: string;
  /** Client IP after the trusted-proxy rules (never a spoofed X-Forwarded-For). */
  readonly clientIp: string;
  /** `clock.now()` when the request arrived. */
  readonly startedAt: number;
  /** Headers to set on the upstream request (applied before hop-by-hop stripping). */
  readonly upstreamHeaders: Record<string, string>;
  /** Header names to remove from the upstream request (lower case). */
  readonly removeUpstreamHeaders: Set<string>;
  /** Headers to set on the response to the client (also on gateway error answers). */
  readonly responseHeaders: Record<string, string>;
  identity?: GatewayIdentity;
  /**
   * Free-form state for middlewares (e.g. rate-limit key), created on first use. When a
   * middleware created it, the proxy stage fills in `upstream` (string: the origin of the
   * upstream URL actually called, last attempt) and `bytesOut` (number: response body bytes
   * written to the client, including gateway error bodies) when the request is over. The access
   * log reads the same facts from the proxy core directly, so plain routes allocate no state.
   */
  readonly state: Record<string, unknown>;
  /** Registers a hook that may edit the upstream response's status headers before they are sent. */
  onUpstreamResponse(
    hook: (status: number, headers: Record<string, string | string[]>) => void,
  ): void;
  /**
   * Answers with `error` as RFC 9457 problem+json (status from the error's class, code from the
   * registry) and ends the request; the chain stops there.
   */
  reply(error: TrellisError, headers?: Record<string, string>): void;
  /** True once a response has started (by `reply` or by the proxy). */
  readonly answered: boolean;
}

/** One handler shape for every gateway stage (koa/hono style): do work, then `await next()`. */
export type GatewayMiddleware = (
  ctx: GatewayRequestContext,
  next: () => Promise<void>,
) => Promise<void>;

/** What middleware factories get from the gateway that builds them. */
export interface GatewayDeps {
  readonly clock: Clock;
  readonly logger: Logger;
}
