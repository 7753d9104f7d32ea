/**
 * API keys, stored as SHA-256 hex digests (never the plaintext). A presented key is hashed and
 * compared against every stored digest with `crypto.timingSafeEqual`: equal-length buffers,
 * no early exit, so the time taken does not depend on which key (if any) matched or on how
 * many leading bytes agreed.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { headerNameSchema } from '../headerUtil.js';

export const apiKeysSchema = z
  .object({
    header: headerNameSchema.default('x-api-key').describe('Request header that carries the key.'),
    keys: z
      .record(
        z.string().min(1),
        z
          .object({
            sha256: z
              .string()
              .regex(/^[0-9a-fA-F]{64}$/, 'must be the 64-character hex SHA-256 of the key')
              .describe(
                'SHA-256 of the key, hex (`printf %s "$KEY" | sha256sum`). The plaintext is never configured.',
              ),
            scopes: z
              .array(z.string().min(1))
              .default([])
              .describe('Scopes this key grants (checked against a route’s `auth.scopes`).'),
          })
          .strict(),
      )
      .describe('Key name -> hashed key. The name becomes the identity subject.'),
  })
  .strict()
  .describe('API keys accepted by routes with `auth.apiKey: true`.');

export type ApiKeysConfig = z.output<typeof apiKeysSchema>;

export interface ApiKeyMatch {
  readonly name: string;
  readonly scopes: readonly string[];
}

/**
 * The SHA-256 hex digest to put in the config (`auth.apiKeys.keys.<name>.sha256`) for a key.
 *
 * @example
 * ```ts
 * import { createGateway, hashApiKey } from '@trellis/gateway';
 * const gateway = createGateway({
 *   auth: { apiKeys: { keys: { ci: { sha256: hashApiKey(process.env.CI_KEY ?? '') } } } },
 *   routes: [{ path: '/api', auth: { apiKey: true }, upstream: { urls: ['http://127.0.0.1:3000'] } }],
 * });
 * ```
 */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key, 'utf8').digest('hex');
}

/** A constant-time lookup over the configured key digests. */
export class ApiKeyStore {
  readonly header: string;
  readonly #entries: { name: string; digest: Buffer; scopes: readonly string[] }[];

  constructor(config: ApiKeysConfig) {
    this.header = config.header;
    this.#entries = Object.entries(config.keys).map(([name, k]) => ({
      name,
      digest: Buffer.from(k.sha256, 'hex'),
      scopes: k.scopes,
    }));
  }

  /** The key's name and scopes, or undefined for an unknown key. */
  match(presented: string): ApiKeyMatch | undefined {
    const digest = createHash('sha256').update(presented, 'utf8').digest();
    let found: ApiKeyMatch | undefined;
    for (const entry of this.#entries) {
      // Both sides are 32-byte digests; every entry is compared (no early exit).
      if (timingSafeEqual(digest, entry.digest) && found === undefined) {
        found = { name: entry.name, scopes: entry.scopes };
      }
    }
    return found;
  }
}
