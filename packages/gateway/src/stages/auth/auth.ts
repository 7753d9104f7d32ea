/**
 * The authentication stage: a route accepts a JWT (from one named provider), an API key, or
 * either. 401 + `WWW-Authenticate` for a missing or invalid credential, 403 when it is valid
 * but lacks a required scope or claim. The verified identity goes to the upstream in a
 * configurable header; the client's own copy of that header is always removed (on every
 * route, with or without auth).
 */
import { ConfigError } from '@trellis/core';
import { errors as joseErrors } from 'jose';
import { z } from 'zod';
import type { GatewayIdentity, GatewayMiddleware } from '../../chain/GatewayMiddleware.js';
import { AuthUnavailableError, ForbiddenError, UnauthorizedError } from '../../errors.js';
import { headerNameSchema, headerValue } from '../headerUtil.js';
import type { ApiKeyStore } from './apiKeys.js';
import type { JwtProvider } from './jwtProvider.js';

export const identityHeaderSchema = z
  .object({
    name: headerNameSchema
      .default('x-trellis-identity')
      .describe(
        'Header carrying the verified identity to upstreams. Any copy sent by the client is removed on every route.',
      ),
    format: z
      .enum(['json', 'subject'])
      .default('json')
      .describe(
        '`json`: `{"sub","method","scopes","iss"}` (non-ASCII escaped as \\uXXXX); `subject`: the subject alone.',
      ),
    includeClaims: z
      .boolean()
      .default(false)
      .describe('With `json`, also include all JWT claims under `claims`.'),
  })
  .strict()
  .prefault({})
  .describe('How the verified identity is forwarded upstream.');

export type IdentityHeaderConfig = z.output<typeof identityHeaderSchema>;

const claimValue = z.union([z.string(), z.number(), z.boolean()]);

export const routeAuthSchema = z
  .object({
    jwt: z
      .string()
      .min(1)
      .optional()
      .describe(
        'Name of the `auth.jwt` provider whose tokens (`Authorization: Bearer`) are accepted.',
      ),
    apiKey: z.boolean().default(false).describe('Accept the API keys of `auth.apiKeys`.'),
    scopes: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Scopes the caller must all have (JWT `scope` (space separated) or `scp` (array); an API key’s `scopes`). Missing -> 403.',
      ),
    claims: z
      .record(z.string(), z.union([claimValue, z.array(claimValue).min(1)]))
      .default({})
      .describe(
        'JWT claims that must be present and equal (a list: equal to one of them; an array claim: contain it). Missing or different -> 403.',
      ),
    forwardCredentials: z
      .boolean()
      .default(false)
      .describe(
        'Forward the `Authorization` header (JWT routes) and the API key header upstream. Off by default: upstreams get the identity header instead of a reusable credential.',
      ),
  })
  .strict()
  .refine((a) => a.jwt !== undefined || a.apiKey, {
    message: 'set jwt (a provider name) and/or apiKey: true',
    path: ['jwt'],
  })
  .describe('Authentication required on this route.');

export type RouteAuthConfig = z.output<typeof routeAuthSchema>;

/** JSON with every non-ASCII character escaped (`\\uXXXX`): always a legal header value. */
export function jsonHeader(value: unknown): string {
  return JSON.stringify(value).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

function scopesOf(payload: Record<string, unknown>): string[] {
  const out: string[] = [];
  if (typeof payload.scope === 'string') out.push(...payload.scope.split(' ').filter(Boolean));
  if (Array.isArray(payload.scp)) {
    for (const s of payload.scp) if (typeof s === 'string') out.push(s);
  } else if (typeof payload.scp === 'string') out.push(...payload.scp.split(' ').filter(Boolean));
  return out;
}

type ClaimRule = string | number | boolean | readonly (string | number | boolean)[];

function claimMatches(actual: unknown, expected: ClaimRule): boolean {
  const wanted = Array.isArray(expected) ? expected : [expected];
  if (Array.isArray(actual)) return actual.some((a) => wanted.includes(a));
  return wanted.includes(actual as string | number | boolean);
}

/** A short, non-leaking reason for a rejected JWT, for `error_description`. */
function jwtReason(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'token expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    return err.claim === 'nbf' ? 'token not yet valid' : `invalid ${err.claim} claim`;
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'algorithm not allowed';
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'bad signature';
  if (err instanceof joseErrors.JWKSNoMatchingKey) return 'unknown signing key';
  return 'malformed token';
}

export interface AuthStageDeps {
  readonly providers: ReadonlyMap<string, JwtProvider>;
  readonly apiKeys: ApiKeyStore | undefined;
  readonly identityHeader: IdentityHeaderConfig;
  /** Used in error messages: the route's config path (`routes.<id>.auth`). */
  readonly path: string;
}

/** Builds the auth stage for one route; throws a ConfigError for an unknown provider. */
export function authMiddleware(auth: RouteAuthConfig, deps: AuthStageDeps): GatewayMiddleware {
  const provider = auth.jwt === undefined ? undefined : deps.providers.get(auth.jwt);
  if (auth.jwt !== undefined && provider === undefined) {
    const path = `${deps.path}.jwt`;
    const message = `unknown JWT provider "${auth.jwt}" (define it under auth.jwt)`;
    throw new ConfigError(`gateway: invalid options: ${path}: ${message}`, {
      component: 'gateway',
      issues: [{ path, message }],
    });
  }
  const apiKeys = auth.apiKey ? deps.apiKeys : undefined;
  if (auth.apiKey && apiKeys === undefined) {
    const path = `${deps.path}.apiKey`;
    const message = 'apiKey: true needs keys under auth.apiKeys';
    throw new ConfigError(`gateway: invalid options: ${path}: ${message}`, {
      component: 'gateway',
      issues: [{ path, message }],
    });
  }
  const identity = deps.identityHeader;
  const challenges: string[] = [];
  if (provider) challenges.push('Bearer realm="trellis"');
  if (apiKeys) challenges.push(`ApiKey realm="trellis", header="${apiKeys.header}"`);
  const challenge = challenges.join(', ');
  const claimRules = Object.entries(auth.claims);

  const unauthorized = (
    ctx: Parameters<GatewayMiddleware>[0],
    message: string,
    bearerError?: string,
  ) =>
    ctx.reply(new UnauthorizedError(message, { scheme: 'Bearer' }), {
      'www-authenticate': bearerError
        ? `Bearer realm="trellis", error="invalid_token", error_description="${bearerError}"`
        : challenge,
    });

  return async (ctx, next) => {
    if (!auth.forwardCredentials) {
      if (provider) ctx.removeUpstreamHeaders.add('authorization');
      if (apiKeys) ctx.removeUpstreamHeaders.add(apiKeys.header);
    }
    let id: GatewayIdentity | undefined;
    let claims: Record<string, unknown> | undefined;

    const authorization = provider ? headerValue(ctx.req, 'authorization') : undefined;
    const bearer =
      authorization !== undefined && /^bearer\s+/i.test(authorization)
        ? authorization.replace(/^bearer\s+/i, '').trim()
        : undefined;
    if (provider && bearer !== undefined) {
      try {
        const { payload } = await provider.verify(bearer);
        claims = payload as Record<string, unknown>;
        if (typeof payload.sub !== 'string' || payload.sub === '') {
          return unauthorized(ctx, 'token has no sub claim', 'token has no subject');
        }
        id = { subject: payload.sub, method: 'jwt', claims, scopes: scopesOf(claims) };
      } catch (err) {
        if (err instanceof AuthUnavailableError) {
          return ctx.reply(err, { 'retry-after': '5' });
        }
        const reason = jwtReason(err);
        return unauthorized(ctx, `invalid token: ${reason}`, reason);
      }
    } else if (apiKeys) {
      const presented = headerValue(ctx.req, apiKeys.header);
      if (presented !== undefined) {
        const match = apiKeys.match(presented);
        if (match === undefined) return unauthorized(ctx, 'unknown API key');
        id = { subject: match.name, method: 'apiKey', scopes: match.scopes };
      }
    }
    if (id === undefined) return unauthorized(ctx, 'authentication required');

    const missing: string[] = [];
    if (auth.scopes.length > 0) {
      const have = new Set(id.scopes);
      for (const s of auth.scopes) if (!have.has(s)) missing.push(`scope ${s}`);
    }
    for (const [name, rule] of claimRules) {
      if (claims === undefined || !claimMatches(claims[name], rule)) missing.push(`claim ${name}`);
    }
    if (missing.length > 0) {
      const headers: Record<string, string> = {};
      if (id.method === 'jwt') {
        headers['www-authenticate'] =
          `Bearer realm="trellis", error="insufficient_scope", scope="${auth.scopes.join(' ')}"`;
      }
      return ctx.reply(
        new ForbiddenError(`not allowed: missing ${missing.join(', ')}`, { missing }),
        headers,
      );
    }

    ctx.identity = id;
    if (identity.format === 'subject') ctx.upstreamHeaders[identity.name] = jsonSafe(id.subject);
    else {
      const body: Record<string, unknown> = {
        sub: id.subject,
        method: id.method,
        scopes: id.scopes,
      };
      if (claims?.iss !== undefined) body.iss = claims.iss;
      if (identity.includeClaims && claims) body.claims = claims;
      ctx.upstreamHeaders[identity.name] = jsonHeader(body);
    }
    // The set value replaces the client's copy whichever order the proxy applies set/remove in.
    ctx.removeUpstreamHeaders.delete(identity.name);
    return next();
  };
}

/** A subject as a header value: non-ASCII and control characters percent-encoded. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

export function jsonSafe(subject: string): string {
  return /^[\x20-\x7e]*$/.test(subject)
    ? subject
    : encodeURIComponent(subject.replace(LONE_SURROGATE, '\ufffd'));
}
