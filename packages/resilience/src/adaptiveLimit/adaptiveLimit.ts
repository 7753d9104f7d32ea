import {
  type AdmissionLimiter,
  type AdmissionPermit,
  type Clock,
  classifyFault,
  clockField,
  durationMs,
  Emitter,
  type Event,
  type ExecuteOptions,
  fnField,
  type PermitOutcome,
  type Policy,
  parseOptions,
  remainingMs,
  type StatusRegistryLike,
  statusField,
  systemClock,
  TimeoutError,
} from '@trellis/core';
import { z } from 'zod';
import { abortedError, type BaseContext, type Task, toContext } from '../CallContext.js';

import { LimitExceededError } from '../errors.js';
import { type Waiter, WaitQueue } from '../WaitQueue.js';
import { Aimd, type AimdOptions, aimdDefaults } from './aimd.js';
import { Gradient2, type Gradient2Options, gradient2Defaults } from './gradient2.js';
import type { LimitAlgorithm } from './LimitAlgorithm.js';
import { Vegas, type VegasOptions, vegasDefaults } from './vegas.js';
import { Windowed, type WindowOptions, windowDefaults } from './windowed.js';

export type LimitAlgorithmName = 'gradient2' | 'vegas' | 'aimd';

export interface AdaptiveLimitOptions {
  /** Default `'gradient2'`. Each uses its published parameters unless set (see the README). */
  algorithm?: LimitAlgorithmName;
  /** Lowest limit. Default 20 for gradient2 and aimd, 1 for vegas (Netflix's defaults). */
  min?: number;
  /** Highest limit. Default 200 for gradient2 and aimd, 1000 for vegas (Netflix's defaults). */
  max?: number;
  /** Starting limit. Default 20 (Netflix). */
  initial?: number;
  /** Calls that may wait (FIFO) for a slot when the limit is full. Default 0. */
  queue?: number;
  /**
   * Guaranteed shares of the limit by partition name, summing to at most 1, e.g.
   * `{ critical: 0.8, batch: 0.2 }`. A partition may borrow slots another leaves idle, except
   * those another partition that was active in the last second is guaranteed.
   */
  partitions?: Record<string, number>;
  /** Parameters of gradient2 (only with that algorithm). */
  gradient2?: Gradient2Options;
  /** Parameters of vegas (only with that algorithm). */
  vegas?: VegasOptions;
  /** Parameters of aimd (only with that algorithm). */
  aimd?: AimdOptions;
  /**
   * Sample windows (Netflix's `WindowedLimit`): the algorithm sees one averaged sample per
   * window. Default on for gradient2 (Netflix's recommended server setup: 1 s windows of at
   * least 10 samples), off for vegas and aimd; `false` turns it off, an object tunes it.
   */
  window?: WindowOptions | boolean;
  clock?: Clock;
  /** The name it registers under in `status` (default `adaptiveLimit`). */
  name?: string;
  /**
   * A status registry (`createStatusRegistry()`): the limit registers as kind `adaptiveLimit`
   * (in flight against the limit, queued against the queue) until `close()`.
   */
  status?: StatusRegistryLike;
}

export interface LimitExecuteOptions extends ExecuteOptions {
  /** Which partition the call belongs to (with `partitions`). Unknown names share the rest. */
  partition?: string;
}

export interface LimitChangeEvent {
  readonly from: number;
  readonly to: number;
}

export interface LimitRejectEvent {
  readonly limit: number;
  readonly inFlight: number;
  readonly partition: string | undefined;
}

export interface LimitSampleEvent {
  readonly rttMs: number;
  readonly dropped: boolean;
}

const unit = z.number().min(0).max(1);
const schema = z
  .strictObject({
    algorithm: z.enum(['gradient2', 'vegas', 'aimd']).default('gradient2'),
    min: z.number().int().min(1).optional(),
    max: z.number().int().min(1).max(1_000_000).optional(),
    initial: z.number().int().min(1).optional(),
    queue: z.number().int().min(0).max(1_000_000).default(0),
    partitions: z
      .record(z.string().min(1), unit)
      .refine((p) => Object.values(p).reduce((a, b) => a + b, 0) <= 1 + 1e-9, {
        message: 'shares must sum to at most 1',
      })
      .optional(),
    gradient2: z
      .strictObject({
        smoothing: z.number().gt(0).max(1).optional(),
        rttTolerance: z.number().min(1).max(100).optional(),
        longWindow: z.number().int().min(1).max(1_000_000).optional(),
        queueSize: z.number().min(0).max(1_000_000).optional(),
        backoffRatio: z.number().min(0.5).lt(1).optional(),
      })
      .optional(),
    vegas: z
      .strictObject({
        smoothing: z.number().gt(0).max(1).optional(),
        probeMultiplier: z.number().int().min(1).max(1_000_000).optional(),
        random: fnField<() => number>().optional(),
      })
      .optional(),
    aimd: z
      .strictObject({
        backoffRatio: z.number().min(0.5).lt(1).optional(),
        timeoutMs: z.number().positive().finite().optional(),
      })
      .optional(),
    window: z
      .union([
        z.boolean(),
        z.strictObject({
          minWindowMs: durationMs({ min: 1, max: 3_600_000 }).optional(),
          maxWindowMs: durationMs({ min: 1, max: 3_600_000 }).optional(),
          size: z.number().int().min(1).max(1_000_000).optional(),
        }),
      ])
      .optional(),
    clock: clockField().optional(),
    name: z.string().min(1).max(200).optional(),
    status: statusField.optional(),
  })
  .superRefine((o, ctx) => {
    const d = bounds(o.algorithm);
    const min = o.min ?? Math.min(d.min, o.max ?? d.min, o.initial ?? d.min);
    const max = o.max ?? Math.max(d.max, min);
    if (min > max)
      ctx.addIssue({ code: 'custom', path: ['min'], message: `must be <= max (${max})` });
    const initial = o.initial ?? clampInt(d.initial, min, max);
    if (initial < min || initial > max) {
      ctx.addIssue({
        code: 'custom',
        path: ['initial'],
        message: `must be within min..max (${min}..${max})`,
      });
    }
    if (typeof o.window === 'object') {
      const lo = o.window.minWindowMs ?? windowDefaults.minWindowMs;
      const hi = o.window.maxWindowMs ?? windowDefaults.maxWindowMs;
      if (lo > hi) {
        ctx.addIssue({
          code: 'custom',
          path: ['window', 'minWindowMs'],
          message: `must be <= maxWindowMs (${hi})`,
        });
      }
    }
    for (const name of ['gradient2', 'vegas', 'aimd'] as const) {
      if (o[name] !== undefined && name !== o.algorithm) {
        ctx.addIssue({
          code: 'custom',
          path: [name],
          message: `only applies with algorithm '${name}'`,
        });
      }
    }
  });

function bounds(algorithm: LimitAlgorithmName) {
  return algorithm === 'vegas'
    ? { min: 1, max: 1000, initial: 20 }
    : { min: 20, max: 200, initial: 20 };
}

function clampInt(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, v));
}

/** The published defaults of each algorithm, for reference (the README lists them). */
export const limitDefaults = {
  gradient2: { ...bounds('gradient2'), ...gradient2Defaults, window: windowDefaults },
  vegas: { ...bounds('vegas'), ...vegasDefaults },
  aimd: { ...bounds('aimd'), ...aimdDefaults },
} as const;

interface PartitionState {
  readonly share: number;
  inFlight: number;
  lastSeen: number;
}

/** How long a partition counts as active, for reserving its guaranteed share. */
const ACTIVE_MS = 1_000;

class Permit implements AdmissionPermit {
  #released = false;
  constructor(
    readonly owner: AdaptiveLimitPolicy,
    readonly partition: string | undefined,
    readonly start: number,
    readonly inFlight: number,
  ) {}
  release(outcome: PermitOutcome): void {
    if (this.#released) return;
    this.#released = true;
    this.owner._release(this, outcome);
  }
}

/**
 * A concurrency limit that adapts from measured latency and upstream failures (Netflix
 * concurrency-limits' algorithms). At most `limit` calls run at once; up to `queue` more wait in
 * FIFO order; the rest reject with `LimitExceededError`. Only successes (latency samples) and
 * `upstream` faults (`classifyFault`) teach it; a caller's abort or deadline, a bad request and
 * an upstream's own shedding do not.
 *
 * It is also core's `AdmissionLimiter`, so `trellis({ shed: { limit } })` takes it.
 *
 * @example
 * ```ts
 * import { adaptiveLimit } from '@trellis/resilience';
 * const limit = adaptiveLimit({ partitions: { critical: 0.8, batch: 0.2 } });
 * await limit.execute(async () => 'done', { partition: 'critical' });
 * console.log(limit.limit, limit.inFlight);
 * ```
 */
export class AdaptiveLimitPolicy implements Policy, AdmissionLimiter {
  readonly algorithm: LimitAlgorithmName;
  readonly min: number;
  readonly max: number;
  readonly queueLimit: number;
  readonly #clock: Clock;
  readonly #algo: LimitAlgorithm;
  readonly #partitions: Map<string, PartitionState> | undefined;
  #limit: number;
  #inFlight = 0;
  #rttMs = 0;
  readonly #queue: WaitQueue<string | undefined>;
  #onLimitChange: Emitter<LimitChangeEvent> | undefined;
  #onReject: Emitter<LimitRejectEvent> | undefined;
  #onSample: Emitter<LimitSampleEvent> | undefined;
  #unregister: (() => void) | undefined;

  constructor(options: AdaptiveLimitOptions = {}) {
    const o = parseOptions(schema, options, 'adaptiveLimit');
    const d = bounds(o.algorithm);
    this.algorithm = o.algorithm;
    this.min = o.min ?? Math.min(d.min, o.max ?? d.min, o.initial ?? d.min);
    this.max = o.max ?? Math.max(d.max, this.min);
    const initial = o.initial ?? clampInt(d.initial, this.min, this.max);
    this.queueLimit = o.queue;
    this.#clock = o.clock ?? systemClock;
    this.#queue = new WaitQueue(this.#clock);
    const algo =
      o.algorithm === 'vegas'
        ? new Vegas(initial, this.min, this.max, stripUndefined(o.vegas))
        : o.algorithm === 'aimd'
          ? new Aimd(initial, this.min, this.max, stripUndefined(o.aimd))
          : new Gradient2(initial, this.min, this.max, stripUndefined(o.gradient2));
    const window = o.window ?? o.algorithm === 'gradient2';
    this.#algo =
      window === false ? algo : new Windowed(algo, window === true ? {} : stripUndefined(window));
    this.#limit = initial;
    if (o.partitions !== undefined) {
      this.#partitions = new Map(
        Object.entries(o.partitions).map(([k, share]) => [
          k,
          { share, inFlight: 0, lastSeen: Number.NEGATIVE_INFINITY },
        ]),
      );
    }
    this.#unregister = o.status?.register(o.name ?? 'adaptiveLimit', {
      kind: 'adaptiveLimit',
      snapshot: () => ({
        algorithm: this.algorithm,
        inflight: this.#inFlight,
        limit: this.#limit,
        queued: this.#queue.length,
        maxQueue: this.queueLimit,
        min: this.min,
        max: this.max,
        rttMs: this.#rttMs,
      }),
    });
  }

  /** Unregisters it from its status registry; the limit itself keeps working. */
  close(): void {
    this.#unregister?.();
    this.#unregister = undefined;
  }

  /** The number of calls allowed at once now (an integer from `min` to `max`). */
  get limit(): number {
    return this.#limit;
  }

  /** Calls holding a slot now. */
  get inFlight(): number {
    return this.#inFlight;
  }

  /** Calls waiting in the queue now. */
  get queued(): number {
    return this.#queue.length;
  }

  /** The last measured RTT in milliseconds (0 before the first sample). */
  get rttMs(): number {
    return this.#rttMs;
  }

  /** `Retry-After` hint: the measured RTT, at least 1 ms. */
  get retryAfterMs(): number {
    return Math.max(1, Math.ceil(this.#rttMs));
  }

  /** Calls in flight in one partition. */
  inFlightOf(partition: string): number {
    return this.#partitions?.get(partition)?.inFlight ?? 0;
  }

  /** Fires when the (integer) limit changes. */
  onLimitChange: Event<LimitChangeEvent> = (listener) => {
    this.#onLimitChange ??= new Emitter();
    return this.#onLimitChange.event(listener);
  };

  /** Fires when a call is rejected. */
  onReject: Event<LimitRejectEvent> = (listener) => {
    this.#onReject ??= new Emitter();
    return this.#onReject.event(listener);
  };

  /** Fires for every sample the algorithm learns from. */
  onSample: Event<LimitSampleEvent> = (listener) => {
    this.#onSample ??= new Emitter();
    return this.#onSample.event(listener);
  };

  /** Takes a slot without waiting (core's `AdmissionLimiter`), or `undefined` when full. */
  tryAcquire(partition?: string): AdmissionPermit | undefined {
    if (!this.#canAdmit(partition)) {
      this.#onReject?.emit({ limit: this.#limit, inFlight: this.#inFlight, partition });
      return undefined;
    }
    return this.#take(partition);
  }

  async execute<T>(fn: Task<T>, opts?: LimitExecuteOptions): Promise<T> {
    const partition = opts?.partition;
    const ctx = toContext(opts);
    let permit: Permit;
    if (this.#canAdmit(partition) && this.#queue.length === 0) permit = this.#take(partition);
    else permit = await this.#wait(ctx, partition);
    let result: T;
    try {
      result = await fn(ctx);
    } catch (err) {
      permit.release(classifyFault(err) === 'upstream' ? 'dropped' : 'ignored');
      throw err;
    }
    permit.release('success');
    return result;
  }

  #canAdmit(partition: string | undefined): boolean {
    if (this.#inFlight >= this.#limit) return false;
    const parts = this.#partitions;
    if (parts === undefined) return true;
    const now = this.#clock.now();
    const own = partition === undefined ? undefined : parts.get(partition);
    if (own !== undefined) {
      own.lastSeen = now;
      if (own.inFlight < Math.floor(own.share * this.#limit)) return true;
    }
    // Borrowing: keep the unused guaranteed slots of every other active partition free.
    let reserved = 0;
    for (const p of parts.values()) {
      if (p === own || now - p.lastSeen > ACTIVE_MS) continue;
      reserved += Math.max(0, Math.floor(p.share * this.#limit) - p.inFlight);
    }
    return this.#inFlight + 1 + reserved <= this.#limit;
  }

  #take(partition: string | undefined): Permit {
    this.#inFlight++;
    const p = partition === undefined ? undefined : this.#partitions?.get(partition);
    if (p !== undefined) p.inFlight++;
    return new Permit(this, partition, this.#clock.now(), this.#inFlight);
  }

  #reject(partition: string | undefined): LimitExceededError {
    this.#onReject?.emit({ limit: this.#limit, inFlight: this.#inFlight, partition });
    return new LimitExceededError(
      `adaptive limit full: ${this.#inFlight} in flight of ${this.#limit}, ${this.#queue.length} queued`,
      {
        retryAfterMs: this.retryAfterMs,
        limit: this.#limit,
        inFlight: this.#inFlight,
        partition,
      },
    );
  }

  #wait(ctx: BaseContext, partition: string | undefined): Promise<Permit> {
    const signal = ctx.signal;
    if (signal.aborted) return Promise.reject(abortedError(signal));
    if (this.#queue.length >= this.queueLimit) return Promise.reject(this.#reject(partition));
    const left = remainingMs(this.#clock);
    if (left !== undefined && left <= 0) {
      return Promise.reject(
        new TimeoutError('deadline passed before a limit slot', { timeoutMs: 0 }),
      );
    }
    return this.#queue.wait(
      signal,
      partition,
      left,
      () => this.#take(partition),
      'for the adaptive limit',
    );
  }

  /** @internal Called by a permit. */
  _release(permit: Permit, outcome: PermitOutcome): void {
    this.#inFlight--;
    const p = permit.partition === undefined ? undefined : this.#partitions?.get(permit.partition);
    if (p !== undefined) p.inFlight--;
    if (outcome !== 'ignored') {
      const rttMs = Math.max(0.001, this.#clock.now() - permit.start);
      const dropped = outcome === 'dropped';
      this.#rttMs = rttMs;
      const next = Math.floor(
        this.#algo.update({ rttMs, inFlight: permit.inFlight, dropped, at: this.#clock.now() }),
      );
      this.#onSample?.emit({ rttMs, dropped });
      if (next !== this.#limit) {
        const from = this.#limit;
        this.#limit = next;
        this.#onLimitChange?.emit({ from, to: next });
      }
    }
    this.#drain();
  }

  #drain(): void {
    for (let i = 0; i < this.#queue.length; ) {
      const w = this.#queue.at(i) as Waiter<string | undefined>;
      if (this.#inFlight >= this.#limit) return;
      if (this.#canAdmit(w.key)) w.run();
      else i++;
    }
  }
}

function stripUndefined<T extends object>(o: T | undefined): T {
  if (o === undefined) return {} as T;
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

/**
 * Creates an {@link AdaptiveLimitPolicy}.
 *
 * @example
 * ```ts
 * import { adaptiveLimit } from '@trellis/resilience';
 * const limit = adaptiveLimit({ algorithm: 'vegas', max: 100, queue: 10 });
 * ```
 */
export function adaptiveLimit(options: AdaptiveLimitOptions = {}): AdaptiveLimitPolicy {
  return new AdaptiveLimitPolicy(options);
}
