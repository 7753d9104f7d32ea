import { IdempotencyStoreError } from '../errors.js';

/** Rejects with `IdempotencyStoreError` when `promise` takes longer than `ms`. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new IdempotencyStoreError(`${what} did not answer within ${ms} ms`)),
      ms,
    );
    timer.unref?.();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Wraps a driver error as `IdempotencyStoreError` (Trellis errors pass through). */
export function storeError(err: unknown, what: string): Error {
  if (err instanceof IdempotencyStoreError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new IdempotencyStoreError(`${what} failed: ${message}`, { cause: err });
}
