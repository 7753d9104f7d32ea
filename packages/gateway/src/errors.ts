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
  name: 'UnauthorizedError',
  description:
    'The route requires authentication and the request carried no credential, or an invalid one (bad JWT signature, `alg: none`, an algorithm the key is not pinned to, expired or not-yet-valid token, wrong issuer or audience, unknown API key). Answered with 401 and `WWW-Authenticate`.',
  status: 401,
});
export type UnauthorizedError = InstanceType<typeof UnauthorizedError>;

export const ForbiddenError = defineError<{ readonly missing: readonly string[] }>({
  code: 'TRELLIS_GATEWAY_FORBIDDEN',
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
  name: 'CorsRejectedError',
  description:
    "A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) came from an origin, or asked for a method or header, that the route's `cors` settings do not allow. Answered with 403 at the gateway; the upstream never sees it.",
  status: 403,
});
export type CorsRejectedError = InstanceType<typeof CorsRejectedError>;

export const GatewayRateLimitedError = defineError<{ readonly retryAfterMs: number }>({
  code: 'TRELLIS_GATEWAY_RATE_LIMITED',
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
  name: 'RouteNotFoundError',
  description:
    'No gateway route matches the request path, method and host. The gateway answers 404 with a JSON error body.',
  status: 404,
});
export type RouteNotFoundError = InstanceType<typeof RouteNotFoundError>;

export const BadPathError = defineError({
  code: 'TRELLIS_GATEWAY_BAD_PATH',
  name: 'BadPathError',
  description:
    'The request target is not a canonical origin-form path: it contains `.`/`..` segments (plain or percent-encoded), an encoded `/` or `\\`, a backslash, double encoding, a control character or NUL, a `//` run, or it is in absolute form. Answered 400 and never forwarded.',
  status: 400,
});
export type BadPathError = InstanceType<typeof BadPathError>;

export const BadFramingError = defineError({
  code: 'TRELLIS_GATEWAY_BAD_FRAMING',
  name: 'BadFramingError',
  description:
    'The request framing is ambiguous or invalid (Content-Length with Transfer-Encoding, duplicate or invalid Content-Length, a Transfer-Encoding other than `chunked`, or a malformed request line or header). Answered 400 and never forwarded.',
  status: 400,
});
export type BadFramingError = InstanceType<typeof BadFramingError>;

export const BodyTooLargeError = defineError<{ readonly limitBytes: number }>({
  code: 'TRELLIS_GATEWAY_BODY_TOO_LARGE',
  name: 'BodyTooLargeError',
  description:
    "The request body is larger than the route's `maxBodyBytes`. Answered 413; a body that grows past the limit while streaming aborts the upstream request.",
  status: 413,
});
export type BodyTooLargeError = InstanceType<typeof BodyTooLargeError>;

export const HeadersTooLargeError = defineError({
  code: 'TRELLIS_GATEWAY_HEADERS_TOO_LARGE',
  name: 'HeadersTooLargeError',
  description:
    "The request headers exceed `limits.maxHeaderBytes` (the server's `maxHeaderSize`). Answered 431.",
  status: 431,
});
export type HeadersTooLargeError = InstanceType<typeof HeadersTooLargeError>;

export const RequestTimeoutError = defineError({
  code: 'TRELLIS_GATEWAY_REQUEST_TIMEOUT',
  name: 'RequestTimeoutError',
  description:
    'The client did not send its request headers within `limits.headersTimeoutMs` (slowloris). Answered 408 and the connection is closed.',
  status: 408,
});
export type RequestTimeoutError = InstanceType<typeof RequestTimeoutError>;

export const BodyConsumedError = defineError({
  code: 'TRELLIS_GATEWAY_BODY_CONSUMED',
  name: 'BodyConsumedError',
  description:
    "The host application's body parser already read the request body and the gateway cannot re-serialise what it left in `req.body` (not JSON, form, text or a Buffer). Answered 400 instead of hanging; mount the gateway before the body parser.",
  status: 400,
});
export type BodyConsumedError = InstanceType<typeof BodyConsumedError>;

export const UpstreamResponseError = defineError({
  code: 'TRELLIS_GATEWAY_UPSTREAM_ABORTED',
  name: 'UpstreamResponseError',
  description:
    'The upstream failed after the response had started (reset or timed out mid-body). The client connection is destroyed so the client sees an aborted response, never a hang.',
});
export type UpstreamResponseError = InstanceType<typeof UpstreamResponseError>;
