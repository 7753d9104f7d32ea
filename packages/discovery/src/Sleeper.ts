import type { Clock, ClockTimer } from '@trellis/core';

/**
 * Clock-driven waits that all end at once on `close()`, so background loops never outlive their
 * owner and never keep the process alive (timers are unref'd).
 * @internal
 */
export class Sleeper {
  readonly #clock: Clock;
  readonly #pending = new Map<ClockTimer, () => void>();
  #closed = false;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Resolves after `ms` (or at once when closed; check `closed` afterwards). */
  wait(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = this.#clock.setTimeout(() => {
        this.#pending.delete(timer);
        resolve();
      }, ms);
      timer.unref?.();
      this.#pending.set(timer, resolve);
    });
  }

  close(): void {
    this.#closed = true;
    for (const [timer, resolve] of this.#pending) {
      this.#clock.clearTimeout(timer);
      resolve();
    }
    this.#pending.clear();
  }
}
