import { type Clock, sleep } from '@trellis/core';

/**
 * Core's abortable `sleep`, plus close-all: every wait ends at once on `close()`, so background
 * loops never outlive their owner; waits are unref'd so they never keep the process alive.
 * @internal
 */
export class Sleeper {
  readonly #clock: Clock;
  readonly #abort = new AbortController();

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get closed(): boolean {
    return this.#abort.signal.aborted;
  }

  /** Resolves after `ms` (or at once when closed; check `closed` afterwards). */
  wait(ms: number): Promise<void> {
    return sleep(ms, { clock: this.#clock, signal: this.#abort.signal, unref: true }).catch(
      () => {},
    );
  }

  close(): void {
    this.#abort.abort();
  }
}
