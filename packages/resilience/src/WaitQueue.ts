/**
 * The FIFO wait queue shared by `bulkhead` and `adaptiveLimit`: a queued call leaves it when its
 * signal aborts (`AbortedError`) or its ambient deadline passes (`TimeoutError`), so it never
 * starts late. A deadline longer than a timer can hold (it may come from the wire) is re-armed
 * until it really passes. Internal.
 */
import { type Clock, type ClockTimer, clampDelay, TimeoutError } from '@trellis/core';
import { abortedError } from './CallContext.js';

/** One queued call. `run()` hands it its slot; `fail()` rejects it. Both remove it. */
export interface Waiter<K> {
  readonly key: K;
  run(): void;
  fail(err: unknown): void;
  done: boolean;
}

export class WaitQueue<K = undefined> {
  readonly #clock: Clock;
  readonly #items: Waiter<K>[] = [];

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  get length(): number {
    return this.#items.length;
  }

  /** The waiter at `index` (oldest first). */
  at(index: number): Waiter<K> | undefined {
    return this.#items[index];
  }

  /** The oldest waiter, removed from the queue. */
  shift(): Waiter<K> | undefined {
    return this.#items.shift();
  }

  /**
   * Queues a call: resolves with `take()` when `run()` is called, rejects when `signal` aborts
   * or `leftMs` (the ambient deadline, when there is one) passes first. `where` names the queue
   * in the timeout message ("in the bulkhead").
   */
  wait<T>(
    signal: AbortSignal,
    key: K,
    leftMs: number | undefined,
    take: () => T,
    where: string,
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const clock = this.#clock;
      let timer: ClockTimer | undefined;
      const cleanup = () => {
        waiter.done = true;
        signal.removeEventListener('abort', onAbort);
        if (timer !== undefined) clock.clearTimeout(timer);
        const i = this.#items.indexOf(waiter);
        if (i !== -1) this.#items.splice(i, 1);
      };
      const onAbort = () => waiter.fail(abortedError(signal));
      const waiter: Waiter<K> = {
        key,
        done: false,
        run: () => {
          cleanup();
          resolve(take());
        },
        fail: (err) => {
          if (waiter.done) return;
          cleanup();
          reject(err);
        },
      };
      signal.addEventListener('abort', onAbort, { once: true });
      if (leftMs !== undefined) {
        const deadlineAt = clock.now() + leftMs;
        const arm = (ms: number) => {
          timer = clock.setTimeout(() => {
            const rest = deadlineAt - clock.now();
            if (rest > 0) arm(rest);
            else {
              waiter.fail(
                new TimeoutError(`deadline passed while queued ${where}`, { timeoutMs: leftMs }),
              );
            }
          }, clampDelay(ms));
        };
        arm(leftMs);
      }
      this.#items.push(waiter);
    });
  }
}
