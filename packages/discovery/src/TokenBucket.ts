import type { Clock } from '@trellis/core';
import type { Sleeper } from './Sleeper.js';

/**
 * A token bucket on an injectable clock: `burst` requests may go at once, then one per
 * `intervalMs`. Consul's blocking-query guidance asks for exactly this (burst 2) instead of a
 * sleep, so the first delivery after a quiet period is never delayed.
 * @internal
 */
export class TokenBucket {
  readonly #clock: Clock;
  readonly #intervalMs: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(clock: Clock, intervalMs: number, burst: number) {
    this.#clock = clock;
    this.#intervalMs = intervalMs;
    this.#burst = burst;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  #refill(): void {
    const now = this.#clock.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#last) / this.#intervalMs);
    this.#last = now;
  }

  /** Milliseconds until a token is available (0 when one is). */
  waitMs(): number {
    this.#refill();
    return this.#tokens >= 1 ? 0 : (1 - this.#tokens) * this.#intervalMs;
  }

  /** Waits (through `sleeper`) until a token is available, then takes it. */
  async take(sleeper: Sleeper): Promise<void> {
    for (let wait = this.waitMs(); wait > 0 && !sleeper.closed; wait = this.waitMs()) {
      await sleeper.wait(wait);
    }
    this.#tokens -= 1;
  }
}
