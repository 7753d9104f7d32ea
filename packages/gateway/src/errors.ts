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
    "The credential is valid but lacks a scope or claim the route requires. Answered with 403; the message names what is missing.",
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
