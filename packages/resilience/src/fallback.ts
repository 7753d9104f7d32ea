import {
  AbortedError,
  Emitter,
  type Event,
  type ExecuteOptions,
  fnField,
  INSTRUMENT_POLICY,
  type Policy,
  type PolicyInstrumentation,
  parseOptions,
} from '@trellis/core';
import { z } from 'zod';
import { type Task, toContext } from './CallContext.js';
import { instrument } from './instrument.js';

export interface FallbackOptions {
  /**
   * Which errors get the fallback. Default: every error except `AbortedError` (a caller that gave
   * up wants no answer).
   */
  when?: (err: unknown) => boolean;
}

const schema = z.strictObject({ when: fnField<(err: unknown) => boolean>().optional() });

const defaultWhen = (err: unknown): boolean => {
  try {
    return !(err instanceof AbortedError);
  } catch {
    return true; // a value that cannot be inspected is not an abort
  }
};

/**
 * Answers with a fallback when the call fails: a value, or a function of the error (which may
 * itself be async, or throw). To fall back to a function value, return it from a function.
 *
 * Typing note: a fallback value is returned in place of the call's result, so the caller's `T`
 * must accept it; `fallback<F>` types the value.
 *
 * @example
 * ```ts
 * import { fallback } from '@trellis/resilience';
 * const cached = fallback(() => ({ items: [] as string[], stale: true }));
 * const result = await cached.execute(async () => ({ items: ['a'], stale: false }));
 * ```
 */
export class FallbackPolicy<F = unknown> implements Policy {
  /** Lets a typed client given `metrics` instrument this policy (see `instrument()`). */
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void {
    instrument(this, target);
  }

  readonly #value: F | ((err: unknown) => F | PromiseLike<F>);
  readonly #when: (err: unknown) => boolean;
  #onFallback: Emitter<unknown> | undefined;

  constructor(value: F | ((err: unknown) => F | PromiseLike<F>), options: FallbackOptions = {}) {
    const o = parseOptions(schema, options, 'fallback');
    this.#value = value;
    this.#when = o.when ?? defaultWhen;
  }

  /** Fires with the error each time the fallback is used. */
  onFallback: Event<unknown> = (listener) => {
    this.#onFallback ??= new Emitter();
    return this.#onFallback.event(listener);
  };

  async execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    try {
      return await fn(toContext(opts));
    } catch (err) {
      if (!this.#when(err)) throw err;
      this.#onFallback?.emit(err);
      const v = this.#value;
      return (typeof v === 'function' ? await (v as (e: unknown) => F)(err) : v) as unknown as T;
    }
  }
}

/**
 * Creates a {@link FallbackPolicy}.
 *
 * @example
 * ```ts
 * import { describeThrown } from '@trellis/core';
 * import { fallback } from '@trellis/resilience';
 * const empty = fallback((err) => ({ items: [], error: describeThrown(err) }));
 * ```
 */
export function fallback<F>(
  value: F | ((err: unknown) => F | PromiseLike<F>),
  options?: FallbackOptions,
): FallbackPolicy<F> {
  return new FallbackPolicy(value, options);
}
