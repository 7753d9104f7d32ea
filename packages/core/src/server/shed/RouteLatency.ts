/**
 * The observed latency of each route: the median of its recent answers, for deadline shedding
 * ("the remaining time is shorter than this route usually takes"). Each route keeps a ring of
 * its last `size` samples; samples older than `windowMs` are ignored, so a route nobody
 * could be admitted to (every request shed) forgets its old latency instead of shedding forever.
 */
import type { Clock } from '../../Clock.js';

interface Ring {
  readonly values: Float64Array;
  readonly at: Float64Array;
  next: number;
  count: number;
}

/** At most this many routes are tracked (templates, so normally far fewer). */
const MAX_ROUTES = 1_000;

export class RouteLatency {
  readonly #rings = new Map<string, Ring>();
  readonly #size: number;
  readonly #windowMs: number;
  readonly #minSamples: number;
  readonly #clock: Clock;
  readonly #scratch: number[] = [];

  constructor(clock: Clock, size = 64, windowMs = 10_000, minSamples = 10) {
    this.#clock = clock;
    this.#size = size;
    this.#windowMs = windowMs;
    this.#minSamples = minSamples;
  }

  record(route: string, ms: number): void {
    let ring = this.#rings.get(route);
    if (ring === undefined) {
      if (this.#rings.size >= MAX_ROUTES) return;
      ring = {
        values: new Float64Array(this.#size),
        at: new Float64Array(this.#size),
        next: 0,
        count: 0,
      };
      this.#rings.set(route, ring);
    }
    ring.values[ring.next] = ms;
    ring.at[ring.next] = this.#clock.now();
    ring.next = (ring.next + 1) % this.#size;
    if (ring.count < this.#size) ring.count++;
  }

  /** The median latency of `route`'s recent answers, or undefined with too few of them. */
  p50(route: string): number | undefined {
    const ring = this.#rings.get(route);
    if (ring === undefined) return undefined;
    const oldest = this.#clock.now() - this.#windowMs;
    const s = this.#scratch;
    s.length = 0;
    for (let i = 0; i < ring.count; i++) {
      if ((ring.at[i] as number) >= oldest) s.push(ring.values[i] as number);
    }
    if (s.length < this.#minSamples) return undefined;
    s.sort((a, b) => a - b);
    return s[(s.length - 1) >> 1];
  }

  /** The smallest median over every route (a lower bound for a request whose route is unknown). */
  minP50(): number | undefined {
    let min: number | undefined;
    for (const route of this.#rings.keys()) {
      const p = this.p50(route);
      if (p !== undefined && (min === undefined || p < min)) min = p;
    }
    return min;
  }
}
