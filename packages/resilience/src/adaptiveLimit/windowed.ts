/**
 * Sample windows, ported from Netflix concurrency-limits' `WindowedLimit`
 * (https://github.com/Netflix/concurrency-limits, concurrency-limits-core/.../limit/WindowedLimit.java),
 * the wrapper Netflix's README puts around Gradient2 for servers: samples are collected into a
 * window and the algorithm sees one sample per window (the window's average RTT, its largest
 * in-flight count, and whether anything in it dropped).
 *
 * Published defaults: a window lasts twice its smallest RTT, at least `minWindowMs` 1000 and at
 * most `maxWindowMs` 1000, and counts only once it holds `size` 10 samples; samples under 0.1 ms
 * are ignored.
 */
import type { LimitAlgorithm, LimitSample } from './LimitAlgorithm.js';

export interface WindowOptions {
  /** Shortest window. Default 1000 ms (Netflix). */
  minWindowMs?: number;
  /** Longest window. Default 1000 ms (Netflix). */
  maxWindowMs?: number;
  /** Samples a window needs to count. Default 10 (Netflix). */
  size?: number;
}

export const windowDefaults = { minWindowMs: 1_000, maxWindowMs: 1_000, size: 10 } as const;
const MIN_RTT_MS = 0.1;

export class Windowed implements LimitAlgorithm {
  readonly #inner: LimitAlgorithm;
  readonly #o: Required<WindowOptions>;
  #next = 0;
  #count = 0;
  #sum = 0;
  #min = Number.POSITIVE_INFINITY;
  #maxInFlight = 0;
  #dropped = false;

  constructor(inner: LimitAlgorithm, options: WindowOptions = {}) {
    this.#inner = inner;
    this.#o = { ...windowDefaults, ...options };
  }

  get limit(): number {
    return this.#inner.limit;
  }

  update(sample: LimitSample): number {
    if (sample.rttMs < MIN_RTT_MS) return this.limit;
    this.#count++;
    this.#sum += sample.rttMs;
    if (sample.rttMs < this.#min) this.#min = sample.rttMs;
    if (sample.inFlight > this.#maxInFlight) this.#maxInFlight = sample.inFlight;
    if (sample.dropped) this.#dropped = true;
    const end = sample.at ?? 0;
    if (end <= this.#next) return this.limit;
    const o = this.#o;
    this.#next = end + Math.min(Math.max(this.#min * 2, o.minWindowMs), o.maxWindowMs);
    const ready = this.#count >= o.size;
    const window = {
      rttMs: this.#sum / this.#count,
      inFlight: this.#maxInFlight,
      dropped: this.#dropped,
      at: end,
    };
    this.#count = 0;
    this.#sum = 0;
    this.#min = Number.POSITIVE_INFINITY;
    this.#maxInFlight = 0;
    this.#dropped = false;
    return ready ? this.#inner.update(window) : this.limit;
  }
}
