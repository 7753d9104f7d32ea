/**
 * The typed client's side of idempotency keys (`idempotencyKey: 'auto'` on the client or an
 * endpoint). One key per logical call, made when the call is prepared, so every retry, hedge and
 * instance the call tries sends the same `Idempotency-Key`; a key the caller passes in `headers`
 * wins. The key is a bare token (a UUID), as Stripe and most servers expect; Trellis servers also
 * accept the draft's quoted form.
 *
 * A 409 answer whose problem `code` is `TRELLIS_IDEMPOTENCY_IN_PROGRESS` (the first attempt is
 * still running on the server) is made retryable, so a retry policy tries again after its
 * `Retry-After`; every other 409 stays final.
 *
 * Without a key, a POST or PATCH is safe to retry only when it never reached the server: give it
 * a key before adding a retry or hedge policy around non-idempotent calls.
 */
import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { IdempotencyInProgressError } from '../errors.js';
import { parseProblem } from '../problem/Problem.js';
import type { HttpMethod } from './endpoint.js';

/** `'auto'`: send a fresh `Idempotency-Key` with each call. */
export type IdempotencyKeyMode = 'auto';

/** The option's schema, for the client and each endpoint. */
export const idempotencyKeySchema = z.literal('auto', { error: "must be 'auto'" });

const HEADER = 'idempotency-key';
/** Methods a client-wide `'auto'` applies to (an endpoint's own `'auto'` applies to its method). */
const NON_IDEMPOTENT = new Set<HttpMethod>(['POST', 'PATCH']);

/** Whether calls of an endpoint get a key: its own setting, else the client's for POST and PATCH. */
export function wantsIdempotencyKey(
  method: HttpMethod,
  endpoint: IdempotencyKeyMode | undefined,
  client: IdempotencyKeyMode | undefined,
): boolean {
  if (endpoint === 'auto') return true;
  return client === 'auto' && NON_IDEMPOTENT.has(method);
}

/** Adds a fresh key to a call's (lower-case) headers unless the caller gave one. */
export function addIdempotencyKey(headers: Record<string, string>): void {
  if (headers[HEADER] === undefined) headers[HEADER] = randomUUID();
}

/** True when a call carries a key: then running it more than once (a hedge) is safe. */
export function hasIdempotencyKey(headers: Readonly<Record<string, string>>): boolean {
  return headers[HEADER] !== undefined;
}

/**
 * True for a 409 that says the same key is still running on the server (retry after
 * `Retry-After`), false for every other answer.
 */
export function isInProgressConflict(
  status: number,
  headers: Readonly<Record<string, string | string[] | undefined>>,
  body: unknown,
): boolean {
  if (status !== 409) return false;
  const type = headers['content-type'];
  const p = parseProblem(typeof type === 'string' ? type : undefined, body);
  return p?.code === IdempotencyInProgressError.code;
}

const kIdempotent = Symbol.for('trellis.idempotent');

/** Marks an attempt function as safe to run in parallel, as `idempotent()` of @trellis/resilience does. */
export function markIdempotent<F extends object>(fn: F): F {
  (fn as F & { [kIdempotent]?: true })[kIdempotent] = true;
  return fn;
}
