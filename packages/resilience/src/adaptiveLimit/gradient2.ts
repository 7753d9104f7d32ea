/**
 * Gradient2, ported from Netflix concurrency-limits' `Gradient2Limit`
 * (https://github.com/Netflix/concurrency-limits, concurrency-limits-core/.../limit/Gradient2Limit.java).
 *
 * The limit follows the gradient between a long-term exponential average of the RTT and the
 * current RTT:
 *
 *     gradient = max(0.5, min(1.0, rttTolerance * longRtt / shortRtt))
 *     newLimit = limit * gradient + queueSize
 *     limit    = limit * (1 - smoothing) + newLimit * smoothing
 *
 * Published defaults (the Java builder's): smoothing 0.2, rttTolerance 1.5, longWindow 600
 * samples (exponential average, 10 warm-up samples), queueSize 4, and when the long RTT is more
 * than twice the short one it decays by 5 % per sample (recovery after an overload). The limit
 * does not grow while fewer than half of it are in flight ("app limited").
 *
 * Trellis addition: a dropped sample (an `upstream` fault, or for server admission an answer
 * that finished after its caller's deadline) multiplies the limit by `backoffRatio` (0.9,
 * AIMDLimit's published default). Netflix's Gradient2 ignores drops; without this its long RTT
 * follows a growing queue and the limit drifts to `max` under a sustained overload (see
 * docs/decisions/0460-overload.md).
 */
import { clamp, type LimitAlgorithm, type LimitSample } from './LimitAlgorithm.js';

export interface Gradient2Options {
  /** Weight of a new estimate, 0-1. Default 0.2 (Netflix). */
  smoothing?: number;
  /** How much latency growth is tolerated before the limit shrinks, >= 1. Default 1.5 (Netflix). */
  rttTolerance?: number;
  /** Samples in the long-term RTT average. Default 600 (Netflix). */
  longWindow?: number;
  /** How far the limit may grow per sample while latency stays low. Default 4 (Netflix). */
  queueSize?: number;
  /** Trellis addition: factor applied on a dropped sample. Default 0.9 (Netflix AIMDLimit). */
  backoffRatio?: number;
}

export const gradient2Defaults = {
  smoothing: 0.2,
  rttTolerance: 1.5,
  longWindow: 600,
  queueSize: 4,
  backoffRatio: 0.9,
} as const;

/** Netflix's `ExpAvgMeasurement`: a plain mean for the first `warmup` samples, then an EMA. */
class ExpAvg {
  value = 0;
  #count = 0;
  readonly #factor: number;
  readonly #warmup: number;
  constructor(window: number, warmup: number) {
    this.#factor = 2 / (window + 1);
    this.#warmup = warmup;
  }
  add(sample: number): number {
    if (this.#count < this.#warmup) {
      this.#count++;
      this.value = this.value + (sample - this.value) / this.#count;
    } else {
      this.value = this.value * (1 - this.#factor) + sample * this.#factor;
    }
    return this.value;
  }
}

export class Gradient2 implements LimitAlgorithm {
  limit: number;
  readonly #min: number;
  readonly #max: number;
  readonly #o: Required<Gradient2Options>;
  readonly #long: ExpAvg;

  constructor(initial: number, min: number, max: number, options: Gradient2Options = {}) {
    this.limit = initial;
    this.#min = min;
    this.#max = max;
    this.#o = { ...gradient2Defaults, ...options };
    this.#long = new ExpAvg(this.#o.longWindow, 10);
  }

  /** The long-term RTT average (ms). */
  get longRttMs(): number {
    return this.#long.value;
  }

  update({ rttMs, inFlight, dropped }: LimitSample): number {
    const o = this.#o;
    const short = rttMs;
    const long = this.#long.add(rttMs);
    if (long / short > 2) this.#long.value *= 0.95;
    if (dropped) {
      this.limit = clamp(this.limit * o.backoffRatio, this.#min, this.#max);
      return this.limit;
    }
    if (inFlight < this.limit / 2) return this.limit;
    const gradient = clamp((o.rttTolerance * long) / short, 0.5, 1);
    const next = this.limit * gradient + o.queueSize;
    this.limit = clamp(this.limit * (1 - o.smoothing) + next * o.smoothing, this.#min, this.#max);
    return this.limit;
  }
}
