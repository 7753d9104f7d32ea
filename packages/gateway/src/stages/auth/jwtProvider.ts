/**
 * One JWT issuer the gateway trusts: a static key (HMAC secret, PEM public key or public JWK) or
 * a JWKS URL, with the algorithms pinned. Pinning is what stops `alg: none` and algorithm
 * confusion (an HS256 token "signed" with the RSA public key): jose only accepts the listed
 * algorithms, and a provider never mixes HMAC and public-key algorithms.
 */
import { createPublicKey, createSecretKey, type KeyObject } from 'node:crypto';
import type { Clock, Logger } from '@trellis/core';
import { type JWTPayload, jwtVerify } from 'jose';
import { z } from 'zod';
import { JwksCache } from './JwksCache.js';

const HMAC = ['HS256'] as const;
const ASYMMETRIC = ['RS256', 'ES256'] as const;
const algorithmSchema = z.enum([...HMAC, ...ASYMMETRIC]);

function publicKeyError(pem: string): string | undefined {
  try {
    const key = createPublicKey(pem);
    return key.type === 'public' ? undefined : 'not a public key';
  } catch (err) {
    return `not a PEM public key (${(err as Error).message})`;
  }
}

export const jwtProviderSchema = z
  .object({
    secret: z
      .string()
      .min(32, 'HS256 secrets must be at least 32 characters (256 bits)')
      .optional()
      .describe(
        'Shared HMAC secret (UTF-8), for `HS256`. Use an env-substituted value, not a literal.',
      ),
    publicKey: z.string().optional().describe('A PEM (SPKI) public key, for `RS256` or `ES256`.'),
    jwk: z
      .record(z.string(), z.unknown())
      .optional()
      .describe('A single public JWK (`kty` RSA or EC), for `RS256` or `ES256`.'),
    jwksUrl: z
      .url({ protocol: /^https?$/ })
      .optional()
      .describe(
        "URL of the issuer's JWK set. Cached; refetched when older than `jwks.cacheMaxAgeMs` or when a token names an unknown `kid` (key rotation), at most once per `jwks.cooldownMs`. Only RSA and EC keys are used.",
      ),
    algorithms: z
      .array(algorithmSchema)
      .min(1)
      .describe(
        'Accepted `alg` values, pinned per provider. `HS256` cannot be combined with `RS256`/`ES256`; `none` is never accepted.',
      ),
    issuer: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .describe('Required `iss` (one value or a list).'),
    audience: z
      .union([z.string(), z.array(z.string()).min(1)])
      .optional()
      .describe('Required `aud`: the token must name at least one of these.'),
    clockSkewSec: z
      .number()
      .int()
      .min(0)
      .max(300)
      .default(30)
      .describe('Tolerance for `exp` and `nbf`, in seconds.'),
    requireExp: z.boolean().default(true).describe('Reject tokens without an `exp` claim.'),
    jwks: z
      .object({
        cacheMaxAgeMs: z
          .number()
          .int()
          .positive()
          .default(600_000)
          .describe('Refetch the key set when older than this.'),
        cooldownMs: z
          .number()
          .int()
          .min(0)
          .default(30_000)
          .describe('Minimum time between two fetches (unknown `kid`, failures).'),
        timeoutMs: z
          .number()
          .int()
          .positive()
          .default(5_000)
          .describe(
            'Total deadline of one fetch: connect, headers and the whole body (a trickling body too).',
          ),
      })
      .strict()
      .prefault({})
      .describe('JWKS caching (only with `jwksUrl`).'),
  })
  .strict()
  .superRefine((p, ctx) => {
    const sources = [p.secret, p.publicKey, p.jwk, p.jwksUrl].filter((s) => s !== undefined);
    if (sources.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['secret'],
        message: 'give exactly one of secret, publicKey, jwk, jwksUrl',
      });
      return;
    }
    const hmac = p.algorithms.filter((a) => a === 'HS256');
    if (p.secret !== undefined && hmac.length !== p.algorithms.length) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message: 'a secret can only verify HS256',
      });
    }
    if (p.secret === undefined && hmac.length > 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message:
          'HS256 needs a secret; public keys only verify RS256/ES256 (this pinning prevents algorithm confusion)',
      });
    }
    if (p.publicKey !== undefined) {
      const problem = publicKeyError(p.publicKey);
      if (problem) ctx.addIssue({ code: 'custom', path: ['publicKey'], message: problem });
    }
    if (p.jwk !== undefined) {
      try {
        const key = createPublicKey({ key: p.jwk as never, format: 'jwk' });
        if (key.type !== 'public') throw new Error('not a public key');
      } catch (err) {
        ctx.addIssue({
          code: 'custom',
          path: ['jwk'],
          message: `not a public JWK (${(err as Error).message})`,
        });
      }
    }
    if ((p.publicKey !== undefined || p.jwk !== undefined) && p.algorithms.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['algorithms'],
        message: 'a single public key verifies exactly one algorithm',
      });
    }
  })
  .describe('A trusted JWT issuer.');

export type JwtProviderConfig = z.output<typeof jwtProviderSchema>;

export interface JwtProviderDeps {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Wall-clock time in ms since the epoch, for `exp`/`nbf` (tests pass a fake). */
  readonly now: () => number;
}

export interface VerifiedJwt {
  readonly payload: JWTPayload;
}

/** A verifier for one provider. `verify` throws a jose error for any invalid token. */
export class JwtProvider {
  readonly #config: JwtProviderConfig;
  readonly #deps: JwtProviderDeps;
  readonly #key: KeyObject | undefined;
  readonly #jwks: JwksCache | undefined;

  constructor(config: JwtProviderConfig, deps: JwtProviderDeps) {
    this.#config = config;
    this.#deps = deps;
    if (config.secret !== undefined) this.#key = createSecretKey(Buffer.from(config.secret));
    else if (config.publicKey !== undefined) this.#key = createPublicKey(config.publicKey);
    else if (config.jwk !== undefined) {
      this.#key = createPublicKey({ key: config.jwk as never, format: 'jwk' });
    } else if (config.jwksUrl !== undefined) {
      this.#jwks = new JwksCache({
        url: config.jwksUrl,
        ...config.jwks,
        clock: deps.clock,
        logger: deps.logger,
      });
    }
  }

  /** The JWKS cache, when the provider uses a JWKS URL. */
  get jwks(): JwksCache | undefined {
    return this.#jwks;
  }

  async verify(token: string): Promise<VerifiedJwt> {
    const c = this.#config;
    const options = {
      algorithms: c.algorithms,
      issuer: c.issuer,
      audience: c.audience,
      clockTolerance: c.clockSkewSec,
      currentDate: new Date(this.#deps.now()),
      requiredClaims: c.requireExp ? ['exp'] : undefined,
    };
    const result = this.#jwks
      ? await jwtVerify(token, this.#jwks.getKey, options)
      : await jwtVerify(token, this.#key!, options);
    return { payload: result.payload };
  }

  async close(): Promise<void> {
    await this.#jwks?.close();
  }
}
