/**
 * Exponential backoff with "equal jitter" (half fixed, half random), for reconnect loops: the
 * n-th consecutive failure waits between `d/2` and `d`, where `d = min(max, base x 2^n)`.
 * @internal
 */
export class Backoff {
  #attempt = 0;
  readonly #base: number;
  readonly #max: number;
  readonly #random: () => number;

  constructor(baseMs: number, maxMs: number, random: () => number = Math.random) {
    this.#base = baseMs;
    this.#max = Math.max(baseMs, maxMs);
    this.#random = random;
  }

  /** Consecutive failures so far. */
  get attempts(): number {
    return this.#attempt;
  }

  next(): number {
    const d = Math.min(this.#max, this.#base * 2 ** Math.min(this.#attempt, 30));
    this.#attempt++;
    return d / 2 + (this.#random() * d) / 2;
  }

  reset(): void {
    this.#attempt = 0;
  }
}
