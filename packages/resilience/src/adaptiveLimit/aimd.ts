/**
 * AIMD, ported from Netflix concurrency-limits' `AIMDLimit`
 * (https://github.com/Netflix/concurrency-limits, concurrency-limits-core/.../limit/AIMDLimit.java):
 * additive increase (+1 per sample while at least half the limit is in flight), multiplicative
 * decrease on a drop or on a sample slower than `timeoutMs`.
 *
 * Published defaults: backoffRatio 0.9 (must be in [0.5, 1)), timeout 5 s.
 */
import { clamp, type LimitAlgorithm, type LimitSample } from './LimitAlgorithm.js';

export interface AimdOptions {
  /** Factor applied on a drop, in [0.5, 1). Default 0.9 (Netflix). */
  backoffRatio?: number;
  /** A sample slower than this counts as a drop. Default 5000 ms (Netflix). */
  timeoutMs?: number;
}

export const aimdDefaults = { backoffRatio: 0.9, timeoutMs: 5_000 } as const;

export class Aimd implements LimitAlgorithm {
  limit: number;
  readonly #min: number;
  readonly #max: number;
  readonly #backoff: number;
  readonly #timeout: number;

  constructor(initial: number, min: number, max: number, options: AimdOptions = {}) {
    this.limit = initial;
    this.#min = min;
    this.#max = max;
    this.#backoff = options.backoffRatio ?? aimdDefaults.backoffRatio;
    this.#timeout = options.timeoutMs ?? aimdDefaults.timeoutMs;
  }

  update({ rttMs, inFlight, dropped }: LimitSample): number {
    let next = this.limit;
    if (dropped || rttMs > this.#timeout) next = this.limit * this.#backoff;
    else if (inFlight * 2 >= this.limit) next = this.limit + 1;
    this.limit = clamp(next, this.#min, this.#max);
    return this.limit;
  }
}
