import type {
  CompleteOptions,
  IdempotencyStore,
  RecordedAnswer,
  RecordId,
} from './IdempotencyStore.js';

/**
 * What a database client must offer: `pg`'s `Pool`/`PoolClient`/`Client` and PGlite (and its
 * transaction object) all do.
 */
export interface Queryable {
  query(text: string, params?: unknown[]): Promise<{ rows: unknown[] }>;
}

/** A store that can record an answer inside the caller's own database transaction. */
export interface TransactionalIdempotencyStore extends IdempotencyStore {
  completeIn(
    tx: Queryable,
    id: RecordId,
    token: string,
    answer: RecordedAnswer,
    options: CompleteOptions,
  ): Promise<boolean>;
}

export function isTransactionalStore(
  store: IdempotencyStore,
): store is TransactionalIdempotencyStore {
  return typeof (store as Partial<TransactionalIdempotencyStore>).completeIn === 'function';
}
