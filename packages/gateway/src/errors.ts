/**
 * Every error `@trellis/gateway` throws or answers with. docs/errors.md is generated from this
 * file (`npm run gen`), so add new errors here, with a description.
 */
import { defineError } from '@trellis/core';

// ---------------------------------------------------------------------------------------------
// Edge stages (src/edge/**): authentication, CORS, rate limiting.
// ---------------------------------------------------------------------------------------------

export const UnauthorizedError = defineError<{ readonly scheme: 'Bearer' | 'ApiKey' }>({
  code: 'TRELLIS_GATEWAY_UNAUTHORIZED',
  fault: 'caller',
  name: 'UnauthorizedError',
  description:
    'The route requires authentication and the request carried no credential, or an invalid one (bad JWT signature, `alg: none`, an algorithm the key is not pinned to, expired or not-yet-valid token, wrong issuer or audience, unknown API key). Answered with 401 and `WWW-Authenticate`.',
  status: 401,
});
export type UnauthorizedError = InstanceType<typeof UnauthorizedError>;

export const ForbiddenError = defineError<{ readonly missing: readonly string[] }>({
  code: 'TRELLIS_GATEWAY_FORBIDDEN',
  fault: 'caller',
  name: 'ForbiddenError',
  description:
    'The credential is valid but lacks a scope or claim the route requires. Answered with 403; the message names what is missing.',
  status: 403,
});
export type ForbiddenError = InstanceType<typeof ForbiddenError>;

export const AuthUnavailableError = defineError<{ readonly jwksUrl: string }>({
  code: 'TRELLIS_GATEWAY_AUTH_UNAVAILABLE',
  name: 'AuthUnavailableError',
  description:
    'A JWT had to be checked against a JWKS URL that could not be fetched (unreachable, timed out, not a JWKS) and no cached key set was usable. Answered with 503 and `Retry-After`.',
  status: 503,
  retryable: true,
});
export type AuthUnavailableError = InstanceType<typeof AuthUnavailableError>;

export const CorsRejectedError = defineError<{ readonly origin: string }>({
  code: 'TRELLIS_GATEWAY_CORS_REJECTED',
  fault: 'caller',
  name: 'CorsRejectedError',
  description:
    "A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) came from an origin, or asked for a method or header, that the route's `cors` settings do not allow. Answered with 403 at the gateway; the upstream never sees it.",
  status: 403,
});
export type CorsRejectedError = InstanceType<typeof CorsRejectedError>;

export const GatewayRateLimitedError = defineError<{ readonly retryAfterMs: number }>({
  code: 'TRELLIS_GATEWAY_RATE_LIMITED',
  fault: 'overload',
  name: 'GatewayRateLimitedError',
  description:
    "A client exceeded the route's rate limit for its key (client IP, identity, API key or a header). Answered with 429, `Retry-After` and the `RateLimit-*` headers. Also answered (with `onStoreError: 'closed'`) when the shared Redis store is unreachable.",
  status: 429,
  retryable: true,
});
export type GatewayRateLimitedError = InstanceType<typeof GatewayRateLimitedError>;

// ---------------------------------------------------------------------------------------------
// Proxy core: canonical paths, framing, limits, upstream failures. The proxy also answers with
// core's ConnectError (502), TimeoutError (504), NoInstanceError (503), ShutdownError (503) and
// resilience's CircuitOpenError / BulkheadRejectedError (503): their codes become error.code.
// ---------------------------------------------------------------------------------------------
export const RouteNotFoundError = defineError({
  code: 'TRELLIS_GATEWAY_NO_ROUTE',
  fault: 'caller',
  name: 'RouteNotFoundError',
  description:
    'No gateway route matches the request path, method and host. The gateway answers 404 (problem+json).',
  status: 404,
});
export type RouteNotFoundError = InstanceType<typeof RouteNotFoundError>;

export const BadPathError = defineError({
  code: 'TRELLIS_GATEWAY_BAD_PATH',
  fault: 'caller',
  name: 'BadPathError',
  description:
    'The request target is not a canonical origin-form path: it contains `.`/`..` segments (plain or percent-encoded), an encoded `/` or `\\`, a backslash, double encoding, a control character or NUL, a `//` run, a `#fragment`, or it is in absolute form; or it contains `;`, `%3B`, `%2F`, `%5C` or `%2E` on a route that did not opt in with `allowEncodedDelimiters`. Answered 400 and never forwarded.',
  status: 400,
});
export type BadPathError = InstanceType<typeof BadPathError>;

export const BadFramingError = defineError({
  code: 'TRELLIS_GATEWAY_BAD_FRAMING',
  fault: 'caller',
  name: 'BadFramingError',
  description:
    'The request framing is ambiguous or invalid (Content-Length with Transfer-Encoding, duplicate or invalid Content-Length, a Transfer-Encoding other than `chunked`, or a malformed request line or header). Answered 400 and never forwarded.',
  status: 400,
});
export type BadFramingError = InstanceType<typeof BadFramingError>;

export const BodyTooLargeError = defineError<{ readonly limitBytes: number }>({
  code: 'TRELLIS_GATEWAY_BODY_TOO_LARGE',
  fault: 'caller',
  name: 'BodyTooLargeError',
  description:
    "The request body is larger than the route's `maxBodyBytes`. Answered 413; a body that grows past the limit while streaming aborts the upstream request.",
  status: 413,
});
export type BodyTooLargeError = InstanceType<typeof BodyTooLargeError>;

export const HeadersTooLargeError = defineError({
  code: 'TRELLIS_GATEWAY_HEADERS_TOO_LARGE',
  fault: 'caller',
  name: 'HeadersTooLargeError',
  description:
    "The request headers exceed `limits.maxHeaderBytes` (the server's `maxHeaderSize`). Answered 431.",
  status: 431,
});
export type HeadersTooLargeError = InstanceType<typeof HeadersTooLargeError>;

export const RequestTimeoutError = defineError({
  code: 'TRELLIS_GATEWAY_REQUEST_TIMEOUT',
  fault: 'caller',
  name: 'RequestTimeoutError',
  description:
    'The client did not send its request headers within `limits.headersTimeoutMs` (slowloris). Answered 408 and the connection is closed.',
  status: 408,
});
export type RequestTimeoutError = InstanceType<typeof RequestTimeoutError>;

export const BodyConsumedError = defineError({
  code: 'TRELLIS_GATEWAY_BODY_CONSUMED',
  fault: 'caller',
  name: 'BodyConsumedError',
  description:
    "The host application's body parser already read the request body and the gateway cannot re-serialise what it left in `req.body` (not JSON, form, text or a Buffer). Answered 400 instead of hanging; mount the gateway before the body parser.",
  status: 400,
});
export type BodyConsumedError = InstanceType<typeof BodyConsumedError>;

export const UpstreamResponseError = defineError({
  code: 'TRELLIS_GATEWAY_UPSTREAM_ABORTED',
  fault: 'upstream',
  name: 'UpstreamResponseError',
  description:
    'The upstream failed after the response had started (reset or timed out mid-body). The client connection is destroyed so the client sees an aborted response, never a hang.',
});
export type UpstreamResponseError = InstanceType<typeof UpstreamResponseError>;

export const MethodNotAllowedError = defineError<{ readonly allow: readonly string[] }>({
  code: 'TRELLIS_GATEWAY_METHOD_NOT_ALLOWED',
  fault: 'caller',
  name: 'MethodNotAllowedError',
  description:
    'A route matches the path but not the method (or the method is `TRACE`/`CONNECT`, refused unless a route lists it). Answered 405 with `Allow`; the request never falls through to a less specific route.',
  status: 405,
});
export type MethodNotAllowedError = InstanceType<typeof MethodNotAllowedError>;

export const BadHostError = defineError({
  code: 'TRELLIS_GATEWAY_BAD_HOST',
  fault: 'caller',
  name: 'BadHostError',
  description:
    'The request has no `Host`, several `Host` lines, or a `Host` that is not `host[:port]` (RFC 9112 §3.2). Answered 400 and never forwarded.',
  status: 400,
});
export type BadHostError = InstanceType<typeof BadHostError>;

export const ExpectationFailedError = defineError({
  code: 'TRELLIS_GATEWAY_EXPECTATION_FAILED',
  fault: 'caller',
  name: 'ExpectationFailedError',
  description:
    'The request has an `Expect` header other than `100-continue` (RFC 9110 §10.1.1). Answered 417. `Expect: 100-continue` is answered by the gateway itself and never forwarded.',
  status: 417,
});
export type ExpectationFailedError = InstanceType<typeof ExpectationFailedError>;

export const UpstreamRequestRejectedError = defineError({
  code: 'TRELLIS_GATEWAY_BAD_REQUEST',
  fault: 'caller',
  name: 'UpstreamRequestRejectedError',
  description:
    'The request could not be sent upstream as the client built it (a header or body the HTTP client refuses). Answered 400; it never counts against the upstream.',
  status: 400,
});
export type UpstreamRequestRejectedError = InstanceType<typeof UpstreamRequestRejectedError>;

export const InvalidUpstreamResponseError = defineError({
  code: 'TRELLIS_GATEWAY_BAD_UPSTREAM_RESPONSE',
  fault: 'upstream',
  name: 'InvalidUpstreamResponseError',
  description:
    'The upstream answered something that is not valid HTTP/1.1 (bad framing, an unsolicited `100 Continue`, which the HTTP client cannot parse, or it closed before a status line). Answered 502; counts against the upstream.',
  status: 502,
});
export type InvalidUpstreamResponseError = InstanceType<typeof InvalidUpstreamResponseError>;

export const UpstreamBusyError = defineError({
  code: 'TRELLIS_GATEWAY_UPSTREAM_BUSY',
  fault: 'overload',
  name: 'UpstreamBusyError',
  description:
    "The request waited longer than the route's `timeouts.queueMs` for a free upstream connection (every connection of the pool busy). Answered 503 with `Retry-After`; it does not count against the upstream.",
  status: 503,
  retryable: true,
});
export type UpstreamBusyError = InstanceType<typeof UpstreamBusyError>;

export const BodyTimeoutError = defineError({
  code: 'TRELLIS_GATEWAY_BODY_TIMEOUT',
  fault: 'caller',
  name: 'BodyTimeoutError',
  description:
    "The client's request body stalled longer than the route's `timeouts.requestBodyMs` between two chunks. Answered 408 (or the connection is closed when the response already started).",
  status: 408,
});
export type BodyTimeoutError = InstanceType<typeof BodyTimeoutError>;
