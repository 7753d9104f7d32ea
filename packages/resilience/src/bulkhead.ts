import {
  type Clock,
  clockField,
  Emitter,
  type Event,
  type ExecuteOptions,
  INSTRUMENT_POLICY,
  type Policy,
  type PolicyInstrumentation,
  parseOptions,
  remainingMs,
  type StatusRegistryLike,
  statusField,
  systemClock,
  TimeoutError,
} from '@trellis/core';
import { z } from 'zod';
import { abortedError, type BaseContext, type Task, toContext } from './CallContext.js';
import { BulkheadRejectedError } from './errors.js';
import { instrument } from './instrument.js';
import { bulkheadSource } from './statusSources.js';
import { WaitQueue } from './WaitQueue.js';

const schema = z.strictObject({
  limit: z.number().int().min(1),
  queue: z.number().int().min(0).default(0),
  clock: clockField().optional(),
  name: z.string().min(1).optional(),
  status: statusField.optional(),
});

export interface BulkheadOptions {
  /** Calls running at once. */
  limit: number;
  /** Calls that may wait for a slot (FIFO). Default 0: reject at once when full. */
  queue?: number;
  clock?: Clock;
  /** The name it registers under with `status`. Default `bulkhead`. */
  name?: string;
  /** Registers the bulkhead with this status registry (`close()` unregisters). */
  status?: StatusRegistryLike;
}

export interface BulkheadRejectEvent {
  readonly running: number;
  readonly queued: number;
}

const noop = () => undefined;

/**
 * Limits concurrency: at most `limit` calls run, up to `queue` more wait in FIFO order, the
 * rest reject with `BulkheadRejectedError`. A queued call leaves the queue when its signal
 * aborts (`AbortedError`) or its ambient deadline passes (`TimeoutError`) — it never starts
 * late.
 *
 * @example
 * ```ts
 * import { bulkhead } from '@trellis/resilience';
 * const db = bulkhead({ limit: 10, queue: 100 });
 * await db.execute(async () => 'row');
 * console.log(db.running, db.queued);
 * ```
 */
export class BulkheadPolicy implements Policy {
  /** Lets a typed client given `metrics` instrument this policy (see `instrument()`). */
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void {
    instrument(this, target);
  }

  readonly limit: number;
  readonly queueLimit: number;
  readonly #clock: Clock;
  #running = 0;
  readonly #queue: WaitQueue;
  #onReject: Emitter<BulkheadRejectEvent> | undefined;

  constructor(options: BulkheadOptions) {
    const o = parseOptions(schema, options, 'bulkhead');
    this.limit = o.limit;
    this.queueLimit = o.queue;
    this.#clock = o.clock ?? systemClock;
    this.#queue = new WaitQueue(this.#clock);
    this.#unregister = o.status?.register(o.name ?? 'bulkhead', bulkheadSource(this));
  }

  #unregister: (() => void) | undefined;

  /** Unregisters from the status registry. */
  close(): void {
    this.#unregister?.();
  }

  /** Calls running now. */
  get running(): number {
    return this.#running;
  }

  /** Calls waiting now. */
  get queued(): number {
    return this.#queue.length;
  }

  /** Fires when a call is rejected because the bulkhead and its queue are full. */
  onReject: Event<BulkheadRejectEvent> = (listener) => {
    this.#onReject ??= new Emitter();
    return this.#onReject.event(listener);
  };

  async execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    const ctx = toContext(opts);
    if (this.#running >= this.limit) await this.#wait(ctx);
    else this.#running++;
    try {
      return await fn(ctx);
    } finally {
      this.#release();
    }
  }

  #wait(ctx: BaseContext): Promise<void> {
    const signal = ctx.signal;
    if (signal.aborted) return Promise.reject(abortedError(signal));
    if (this.#queue.length >= this.queueLimit) {
      this.#onReject?.emit({ running: this.#running, queued: this.#queue.length });
      return Promise.reject(
        new BulkheadRejectedError(
          `bulkhead full: ${this.#running} running, ${this.#queue.length} queued`,
          { limit: this.limit, queue: this.queueLimit },
        ),
      );
    }
    const left = remainingMs(this.#clock);
    if (left !== undefined && left <= 0) {
      return Promise.reject(
        new TimeoutError('deadline passed before a bulkhead slot', { timeoutMs: 0 }),
      );
    }
    return this.#queue.wait(signal, undefined, left, noop, 'in the bulkhead');
  }

  #release(): void {
    const next = this.#queue.shift();
    if (next === undefined) {
      this.#running--;
      return;
    }
    // The slot passes straight to the next waiter: `running` stays the same.
    next.run();
  }
}

/**
 * Creates a {@link BulkheadPolicy}.
 *
 * @example
 * ```ts
 * import { bulkhead } from '@trellis/resilience';
 * const pool = bulkhead({ limit: 4, queue: 16 });
 * ```
 */
export function bulkhead(options: BulkheadOptions): BulkheadPolicy {
  return new BulkheadPolicy(options);
}
