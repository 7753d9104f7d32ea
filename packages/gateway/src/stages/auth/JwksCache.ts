/**
 * A JWKS fetched from a URL, cached, and refetched on an unknown `kid` (key rotation) at most
 * once per `cooldownMs`. Time comes from the injected `Clock`, HTTP from an undici `Agent` the
 * cache owns (closed by `close()`), so nothing is left behind.
 */
import type { Clock, Logger } from '@trellis/core';
import {
  createLocalJWKSet,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWK,
  type JWSHeaderParameters,
} from 'jose';
import { Agent, request } from 'undici';
import { AuthUnavailableError } from '../../errors.js';

export interface JwksCacheOptions {
  readonly url: string;
  /** Keys are refetched when older than this (default 10 min). */
  readonly cacheMaxAgeMs: number;
  /** Minimum time between two fetches triggered by an unknown `kid` (default 30 s). */
  readonly cooldownMs: number;
  /** Total deadline of one fetch (connect, headers and the whole body: a trickling body too). */
  readonly timeoutMs: number;
  readonly clock: Clock;
  readonly logger: Logger;
}

type KeyResolver = ReturnType<typeof createLocalJWKSet>;
type ResolvedKey = Awaited<ReturnType<KeyResolver>>;

const MAX_JWKS_BYTES = 1_048_576;

export class JwksCache {
  readonly #options: JwksCacheOptions;
  readonly #agent: Agent;
  #resolver: KeyResolver | undefined;
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #lastAttempt = Number.NEGATIVE_INFINITY;
  #pending: Promise<void> | undefined;
  #closed = false;
  /** How many times the key set was fetched (successfully or not); for tests and metrics. */
  fetches = 0;

  constructor(options: JwksCacheOptions) {
    this.#options = options;
    this.#agent = new Agent({
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connectTimeout: options.timeoutMs,
      keepAliveTimeout: 1_000,
    });
  }

  /** A jose key-resolver: `jwtVerify(token, cache.getKey, ...)`. */
  readonly getKey = async (
    header: JWSHeaderParameters,
    token: FlattenedJWSInput,
  ): Promise<ResolvedKey> => {
    const { clock, cacheMaxAgeMs, cooldownMs } = this.#options;
    const now = clock.now();
    // Fetch when there is no key set or it is stale, but never more than once per cooldown
    // (a failing JWKS endpoint is not hammered; a stale key set keeps serving meanwhile).
    if (
      (this.#resolver === undefined || now - this.#fetchedAt >= cacheMaxAgeMs) &&
      now - this.#lastAttempt >= cooldownMs
    ) {
      await this.#refresh();
    } else if (this.#pending) {
      await this.#pending;
    }
    const resolver = this.#resolver;
    if (resolver === undefined) {
      throw new AuthUnavailableError(`JWKS ${this.#options.url} is unavailable`, {
        jwksUrl: this.#options.url,
      });
    }
    try {
      return await resolver(header, token);
    } catch (err) {
      // Unknown kid: the issuer may have rotated keys. Refetch, but not more than once per cooldown.
      if (
        err instanceof errors.JWKSNoMatchingKey &&
        clock.now() - this.#lastAttempt >= cooldownMs
      ) {
        await this.#refresh();
        return (this.#resolver ?? resolver)(header, token);
      }
      throw err;
    }
  };

  #refresh(): Promise<void> {
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #fetch(): Promise<void> {
    if (this.#closed) return;
    const { url, clock, logger } = this.#options;
    this.#lastAttempt = clock.now();
    this.fetches++;
    const ac = new AbortController();
    this.#abort = ac;
    const timer = clock.setTimeout(
      () => ac.abort(new Error(`JWKS fetch did not finish within ${this.#options.timeoutMs} ms`)),
      this.#options.timeoutMs,
    );
    try {
      const res = await request(url, {
        dispatcher: this.#agent,
        headers: { accept: 'application/jwk-set+json, application/json' },
        signal: ac.signal,
      });
      let size = 0;
      const chunks: Buffer[] = [];
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > MAX_JWKS_BYTES) {
          res.body.destroy();
          throw new Error(`JWKS larger than ${MAX_JWKS_BYTES} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      if (res.statusCode !== 200) throw new Error(`JWKS answered HTTP ${res.statusCode}`);
      const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      if (
        parsed === null ||
        typeof parsed !== 'object' ||
        !Array.isArray((parsed as { keys?: unknown }).keys)
      ) {
        throw new Error('response is not a JWK set ({ "keys": [...] })');
      }
      // Only public asymmetric keys: a symmetric (`oct`) key in a JWKS would allow HMAC tokens.
      const keys = ((parsed as { keys: unknown[] }).keys as JWK[]).filter(
        (k) => k !== null && typeof k === 'object' && (k.kty === 'RSA' || k.kty === 'EC'),
      );
      const set: JSONWebKeySet = { keys: keys as JSONWebKeySet['keys'] };
      this.#resolver = createLocalJWKSet(set);
      this.#fetchedAt = clock.now();
    } catch (err) {
      logger.warn(
        { err, jwksUrl: url, keptCachedKeys: this.#resolver !== undefined },
        'gateway: JWKS fetch failed',
      );
    } finally {
      clock.clearTimeout(timer);
      this.#abort = undefined;
    }
  }

  #abort: AbortController | undefined;

  /** Stops a fetch in flight at once, then releases the connection. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#abort?.abort(new Error('gateway closing'));
    await this.#pending;
    await this.#agent.destroy();
  }
}
