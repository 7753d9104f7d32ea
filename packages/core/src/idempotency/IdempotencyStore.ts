/**
 * The contract every idempotency store implements: memory (the embedded default), Redis
 * (`@trellis/core/idempotency/redis`) and Postgres (`@trellis/core/idempotency/postgres`).
 *
 * A record lives under (scope, key). Its life: `claim` creates it *in progress* with a lease
 * (a token proves who holds it); the holder `renew`s the lease while the handler runs, then
 * `complete`s it with the answer (kept for `ttlMs`) or `release`s it (a 5xx, or a failure: the
 * retry may run). A holder that crashes stops renewing, so its lease runs out and the key frees
 * itself.
 */

/** An answer as recorded and replayed: status, the chosen headers, the body bytes. */
export interface RecordedAnswer {
  readonly status: number;
  /** Lower-case names; only the headers the middleware was told to record. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** Where a record lives: the caller's scope (e.g. its identity; `''` for none) and the key. */
export interface RecordId {
  readonly scope: string;
  readonly key: string;
}

export type ClaimResult =
  /** The caller holds the key now and must run the request. */
  | { readonly state: 'claimed'; readonly token: string }
  /** Someone else holds it; `fingerprint` says for which request. */
  | { readonly state: 'in-progress'; readonly fingerprint: string }
  /** Done before: the recorded answer. */
  | { readonly state: 'completed'; readonly fingerprint: string; readonly answer: RecordedAnswer };

export interface ClaimOptions {
  /** How long the claim holds without renewal. */
  readonly leaseMs: number;
}

export interface CompleteOptions {
  /** How long the recorded answer is kept. */
  readonly ttlMs: number;
}

export interface IdempotencyStore {
  /**
   * Atomically: when no live record exists (none, or an in-progress one whose lease ran out),
   * create an in-progress one for `fingerprint` and return `claimed` with a fresh token;
   * otherwise return what is there.
   */
  claim(id: RecordId, fingerprint: string, options: ClaimOptions): Promise<ClaimResult>;
  /** Extends the lease; false when the token no longer holds the key (it ran out, or was taken). */
  renew(id: RecordId, token: string, options: ClaimOptions): Promise<boolean>;
  /** Records the answer; false when the token no longer holds the key. */
  complete(
    id: RecordId,
    token: string,
    answer: RecordedAnswer,
    options: CompleteOptions,
  ): Promise<boolean>;
  /** Drops an in-progress record the token holds (a completed one stays). */
  release(id: RecordId, token: string): Promise<void>;
  /** True when in-progress leases expire by time (stores shared between processes). */
  readonly leases: boolean;
}
