/**
 * Vegas, ported from Netflix concurrency-limits' `VegasLimit`
 * (https://github.com/Netflix/concurrency-limits, concurrency-limits-core/.../limit/VegasLimit.java),
 * after TCP Vegas. The queue a limit builds is estimated from the no-load RTT (the smallest
 * seen, re-probed now and then):
 *
 *     queue = ceil(limit * (1 - rttNoLoad / rtt))
 *
 * and the limit grows by `beta` when `queue <= threshold`, by `log10(limit)` when
 * `queue < alpha`, and shrinks by `log10(limit)` when `queue > beta` or on a drop.
 *
 * Published defaults: alpha = 3·log10(limit), beta = 6·log10(limit), threshold = log10(limit)
 * (each log10 at least 1, as Netflix's `Log10RootIntFunction`), smoothing 1.0, probeMultiplier
 * 30 (the no-load RTT is re-measured every 30·limit·jitter samples, jitter 0.5-1). The limit does
 * not grow while fewer than half of it are in flight.
 */
import { clamp, type LimitAlgorithm, type LimitSample } from './LimitAlgorithm.js';

export interface VegasOptions {
  /** Weight of a new estimate, 0-1. Default 1 (Netflix). */
  smoothing?: number;
  /** Re-probe the no-load RTT every `probeMultiplier · limit` samples. Default 30 (Netflix). */
  probeMultiplier?: number;
  /** Random source for the probe jitter, [0, 1). Default `Math.random`. */
  random?: () => number;
}

export const vegasDefaults = { smoothing: 1, probeMultiplier: 30 } as const;

const log10 = (limit: number) => Math.max(1, Math.trunc(Math.log10(Math.max(1, limit))));

export class Vegas implements LimitAlgorithm {
  limit: number;
  readonly #min: number;
  readonly #max: number;
  readonly #smoothing: number;
  readonly #probeMultiplier: number;
  readonly #random: () => number;
  #rttNoLoad = 0;
  #probeCount = 0;
  #probeJitter = 0;

  constructor(initial: number, min: number, max: number, options: VegasOptions = {}) {
    this.limit = initial;
    this.#min = min;
    this.#max = max;
    this.#smoothing = options.smoothing ?? vegasDefaults.smoothing;
    this.#probeMultiplier = options.probeMultiplier ?? vegasDefaults.probeMultiplier;
    this.#random = options.random ?? Math.random;
    this.#resetJitter();
  }

  /** The no-load RTT estimate (ms), 0 before the first sample. */
  get rttNoLoadMs(): number {
    return this.#rttNoLoad;
  }

  #resetJitter(): void {
    this.#probeJitter = 0.5 + this.#random() * 0.5;
  }

  update({ rttMs, inFlight, dropped }: LimitSample): number {
    this.#probeCount++;
    if (this.#probeJitter * this.#probeMultiplier * this.limit <= this.#probeCount) {
      this.#resetJitter();
      this.#probeCount = 0;
      this.#rttNoLoad = rttMs;
      return this.limit;
    }
    if (this.#rttNoLoad === 0 || rttMs < this.#rttNoLoad) {
      this.#rttNoLoad = rttMs;
      return this.limit;
    }
    const limit = this.limit;
    const queue = Math.ceil(limit * (1 - this.#rttNoLoad / rttMs));
    const l = log10(limit);
    let next: number;
    if (dropped) next = limit - l;
    else if (inFlight * 2 < limit) return limit;
    else if (queue <= l) next = limit + 6 * l;
    else if (queue < 3 * l) next = limit + l;
    else if (queue > 6 * l) next = limit - l;
    else return limit;
    next = clamp(next, this.#min, this.#max);
    this.limit = clamp(
      (1 - this.#smoothing) * limit + this.#smoothing * next,
      this.#min,
      this.#max,
    );
    return this.limit;
  }
}
