import { type Clock, sleep } from '@trellis/core';

/**
 * Core's abortable `sleep`, plus close-all: every wait ends at once on `close()`, so background
 * loops never outlive their owner; waits are unref'd so they never keep the process alive.
 * @internal
 */
export class Sleeper {
  readonly #clock: Clock;
  readonly #abort = new AbortController();
  readonly #loops = new Set<Promise<void>>();

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

  /** Runs a background loop that `drained()` waits for (its own errors are its business). */
  run(loop: () => Promise<void>): void {
    const p = loop();
    this.#loops.add(p);
    void p.finally(() => this.#loops.delete(p));
  }

  /** Ends every wait at once (loops see `closed` and return). */
  close(): void {
    this.#abort.abort();
  }

  /** Resolves when every loop started with `run()` has returned. */
  async drained(): Promise<void> {
    await Promise.allSettled([...this.#loops]);
  }
}
