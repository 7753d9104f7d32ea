import {
  type Clock,
  clockField,
  durationMs,
  Emitter,
  type Event,
  parseOptions,
  type StatusRegistryLike,
  statusField,
  systemClock,
} from '@trellis/core';
import { z } from 'zod';
import { budgetSource } from './statusSources.js';

const schema = z.strictObject({
  ratio: z.number().min(0).max(1000).finite().default(0.2),
  minRetriesPerSecond: z.number().min(0).finite().default(10),
  ttlMs: durationMs({ min: 1 }).default(10_000),
  clock: clockField().optional(),
  name: z.string().min(1).optional(),
  status: statusField.optional(),
});

export interface RetryBudgetOptions {
  /** Retries allowed per call made, over the last `ttlMs`. Default 0.2 (20 %). */
  ratio?: number;
  /** A floor so low traffic can still retry: this many per second of `ttlMs`. Default 10. */
  minRetriesPerSecond?: number;
  /** How long a call counts towards the budget. Default 10_000. */
  ttlMs?: number;
  clock?: Clock;
  /** The name it registers under with `status`. Default `retry-budget`. */
  name?: string;
  /** Registers the budget with this status registry (`close()` unregisters). */
  status?: StatusRegistryLike;
}

const BUCKETS = 10;

/**
 * A Finagle-style retry budget: over the last `ttlMs`, retries may not exceed
 * `ratio × calls + minRetriesPerSecond × ttlMs / 1000`. Share one between many retry policies
 * (the gateway shares one per route) so retries cannot amplify an outage. No timers: the window
 * rotates lazily, on use, in 10 buckets.
 *
 * @example
 * ```ts
 * import { retry, retryBudget } from '@trellis/resilience';
 * const budget = retryBudget({ ratio: 0.1 });
 * const a = retry({ budget });
 * const b = retry({ budget, maxAttempts: 2 });
 * ```
 */
export class RetryBudget {
  readonly ratio: number;
  readonly minRetriesPerSecond: number;
  readonly ttlMs: number;
  readonly #clock: Clock;
  readonly #bucketMs: number;
  readonly #deposits = new Float64Array(BUCKETS);
  readonly #withdrawals = new Float64Array(BUCKETS);
  #depositTotal = 0;
  #withdrawalTotal = 0;
  #current: number;

  constructor(options: RetryBudgetOptions = {}) {
    const o = parseOptions(schema, options, 'retryBudget');
    this.ratio = o.ratio;
    this.minRetriesPerSecond = o.minRetriesPerSecond;
    this.ttlMs = o.ttlMs;
    this.#clock = o.clock ?? systemClock;
    this.#bucketMs = o.ttlMs / BUCKETS;
    this.#current = Math.floor(this.#clock.now() / this.#bucketMs);
    this.#unregister = o.status?.register(o.name ?? 'retry-budget', budgetSource(this));
  }

  #unregister: (() => void) | undefined;
  #exhausted = false;
  #onExhausted: Emitter<void> | undefined;

  /** Fires when a retry is refused after the budget had room (once per exhaustion). */
  onExhausted: Event<void> = (listener) => {
    this.#onExhausted ??= new Emitter();
    return this.#onExhausted.event(listener);
  };

  /** Retries the budget allows over the current window (spent or not). */
  get capacity(): number {
    this.#rotate();
    return this.#allowed();
  }

  /** Unregisters from the status registry. */
  close(): void {
    this.#unregister?.();
    this.#onExhausted?.clear();
  }

  #rotate(): number {
    const index = Math.floor(this.#clock.now() / this.#bucketMs);
    const steps = index - this.#current;
    if (steps > 0) {
      if (steps >= BUCKETS) {
        this.#deposits.fill(0);
        this.#withdrawals.fill(0);
        this.#depositTotal = 0;
        this.#withdrawalTotal = 0;
      } else {
        for (let i = 1; i <= steps; i++) {
          const slot = (this.#current + i) % BUCKETS;
          this.#depositTotal -= this.#deposits[slot] as number;
          this.#withdrawalTotal -= this.#withdrawals[slot] as number;
          this.#deposits[slot] = 0;
          this.#withdrawals[slot] = 0;
        }
      }
      this.#current = index;
    }
    return index % BUCKETS;
  }

  /** Records a call (a first attempt). Retry policies call this once per `execute`. */
  deposit(): void {
    const slot = this.#rotate();
    this.#deposits[slot] = (this.#deposits[slot] as number) + 1;
    this.#depositTotal++;
  }

  /** Takes one retry from the budget; false (and nothing taken) when it is spent. */
  tryWithdraw(): boolean {
    const slot = this.#rotate();
    if (this.#withdrawalTotal + 1 > this.#allowed()) {
      if (!this.#exhausted) {
        this.#exhausted = true;
        this.#onExhausted?.emit();
      }
      return false;
    }
    this.#exhausted = false;
    this.#withdrawals[slot] = (this.#withdrawals[slot] as number) + 1;
    this.#withdrawalTotal++;
    return true;
  }

  #allowed(): number {
    return Math.floor(
      this.#depositTotal * this.ratio + (this.minRetriesPerSecond * this.ttlMs) / 1000,
    );
  }

  /** Retries that may still be taken now. */
  get available(): number {
    this.#rotate();
    return Math.max(0, this.#allowed() - this.#withdrawalTotal);
  }
}

/**
 * Creates a {@link RetryBudget}.
 *
 * @example
 * ```ts
 * import { retry, retryBudget } from '@trellis/resilience';
 * const shared = retryBudget();
 * const policy = retry({ budget: shared });
 * ```
 */
export function retryBudget(options?: RetryBudgetOptions): RetryBudget {
  return new RetryBudget(options);
}
