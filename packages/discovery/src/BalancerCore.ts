import {
  type Balancer,
  type Clock,
  classifyFault,
  clockField,
  countsAgainstUpstream,
  durationMs,
  Emitter,
  type Event,
  type FaultKind,
  fnField,
  type Instance,
  type Pick,
  type PickOptions,
  type PickOutcome,
  type StatusRegistryLike,
  type StatusSource,
  statusField,
  systemClock,
} from '@trellis/core';
import { z } from 'zod';

/**
 * Passive outlier ejection, shared by every balancer. Defaults follow gRPC A50 (and Envoy's
 * `consecutive_5xx`): 5 consecutive failures, or a failure rate of 85 % over a 10 s interval with
 * at least 50 requests (only when at least 5 instances have that volume), eject an instance for
 * `baseEjectionMs` x times ejected, capped at `maxEjectionMs`; at most `maxEjectionPercent` of the
 * instances are ejected at once (at least one may always be ejected).
 */
export interface OutlierOptions {
  /** Consecutive failures that eject an instance; 0 turns this rule off. Default 5. */
  readonly consecutiveFailures?: number;
  /** Failure percentage over one interval that ejects an instance; 0 turns it off. Default 85. */
  readonly failurePercent?: number;
  /** Requests an instance needs in an interval before its failure rate counts. Default 50. */
  readonly failureMinRequests?: number;
  /** Instances that need that volume before the failure-rate rule runs at all. Default 5. */
  readonly failureMinInstances?: number;
  /** Length of the failure-rate interval; also how often the ejection multiplier decays. Default 10 000. */
  readonly intervalMs?: number;
  /** First ejection lasts this long; the n-th lasts n times as long. Default 30 000. */
  readonly baseEjectionMs?: number;
  /** Cap on one ejection. Default 300 000 (or `baseEjectionMs` when larger). */
  readonly maxEjectionMs?: number;
  /** At most this share of the instances is ejected at once. Default 10. */
  readonly maxEjectionPercent?: number;
}

/** Options every balancer takes. */
export interface BalancerOptions {
  /** Passive outlier ejection; `false` turns it off. */
  readonly outlier?: OutlierOptions | false;
  /** Time source (tests pass `createTestClock()`). */
  readonly clock?: Clock;
  /** Random source in [0, 1); default `Math.random`. */
  readonly random?: () => number;
  /**
   * How long the state of an instance that left discovery is kept (so a flapping instance keeps
   * its ejection and latency history). Default 60 000.
   */
  readonly retainMs?: number;
  /**
   * What `pick` does when every candidate is ejected: `'ignore-ejection'` (default) picks among
   * the ejected instances anyway, like Envoy's panic routing, so a service with one or two
   * instances is never cut off by its own outlier detector; `'none'` returns `undefined`.
   */
  readonly whenAllEjected?: 'ignore-ejection' | 'none';
  /** The service name it registers under with `status`. */
  readonly name?: string;
  /**
   * Registers the balancer's instances (latency, in flight, requests, ejection state and
   * reason) with this status registry, as a `service` entry with eject/restore controls.
   */
  readonly status?: StatusRegistryLike;
}

/** Emitted when an instance is ejected. */
export interface EjectionEvent {
  readonly instance: Instance;
  readonly reason: 'consecutive-failures' | 'failure-rate' | 'manual';
  /** How long this ejection lasts. */
  readonly durationMs: number;
  /** How many times this instance has been ejected without recovering in between. */
  readonly timesEjected: number;
}

/** A balancer from this package: core's `Balancer`, plus ejection introspection. */
export interface TrellisBalancer extends Balancer {
  /** Fires when an instance is ejected. */
  readonly onEject: Event<EjectionEvent>;
  /** True while the instance with this id is ejected. */
  isEjected(id: string): boolean;
  /** Requests picked and not yet `done()` for this instance id. */
  inflight(id: string): number;
  /** Instance ids the balancer currently keeps state for (bounded: see `retainMs`). */
  readonly trackedIds: number;
  /** Ejects an instance by hand until `restore(id)` (reason `manual`); false for unknown ids. */
  eject(id: string): boolean;
  /** Ends an instance's ejection now; false for unknown ids. */
  restore(id: string): boolean;
  /** Unregisters from the status registry (the balancer owns no timers). */
  close(): void;
}

const outlierSchema = z
  .object({
    consecutiveFailures: z.number().int().min(0).default(5),
    failurePercent: z.number().min(0).max(100).default(85),
    failureMinRequests: z.number().int().min(1).default(50),
    failureMinInstances: z.number().int().min(1).default(5),
    intervalMs: durationMs({ positive: true }).default(10_000),
    baseEjectionMs: durationMs({ positive: true }).default(30_000),
    maxEjectionMs: durationMs({ positive: true }).default(300_000),
    maxEjectionPercent: z.number().min(0).max(100).default(10),
  })
  .strict();

/** Schema fields shared by every balancer's options (spread into each balancer's schema). */
export const balancerFields = {
  outlier: z.union([z.literal(false), outlierSchema]).optional(),
  clock: clockField().optional(),
  random: fnField<() => number>().optional(),
  retainMs: durationMs().default(60_000),
  whenAllEjected: z.enum(['ignore-ejection', 'none']).default('ignore-ejection'),
  name: z.string().min(1).optional(),
  status: statusField.optional(),
};

type ParsedOutlier = z.output<typeof outlierSchema>;
export interface ParsedBalancerOptions {
  outlier?: false | ParsedOutlier | undefined;
  clock?: Clock | undefined;
  random?: (() => number) | undefined;
  retainMs: number;
  whenAllEjected: 'ignore-ejection' | 'none';
  name?: string | undefined;
  status?: StatusRegistryLike | undefined;
}

/** Per-instance state. Kept while the instance is in discovery, has requests in flight, or left recently. */
export class InstanceState {
  instance: Instance;
  readonly id: string;
  weight: number;
  inflight = 0;
  /** Peak-EWMA latency estimate (ms) and when it was last updated. */
  ewma = -1;
  stamp = 0;
  consecutiveFailures = 0;
  intervalOk = 0;
  intervalFail = 0;
  ejected = false;
  ejectedUntil = 0;
  timesEjected = 0;
  /** For the status registry: finished requests, failed ones, the last latency, why ejected. */
  requests = 0;
  failures = 0;
  lastMs = -1;
  ejectionReason: string | undefined;
  /** Clock time when the instance was last seen in a discovery list; -1 while it is. */
  goneSince = -1;
  /** The reusable pick handed out for this instance (no allocation per request). */
  readonly pick: Pick & { instance: Instance };

  constructor(instance: Instance, core: BalancerCore) {
    this.instance = instance;
    this.id = instance.id;
    this.weight = weightOf(instance);
    const state = this;
    this.pick = {
      instance,
      done(outcome: PickOutcome) {
        core.done(state, outcome);
      },
    };
  }
}

/** The fault of a failed outcome: its `fault`, else its `error` classified, else `upstream`. */
function faultOfOutcome(outcome: PickOutcome): FaultKind {
  if (outcome.fault !== undefined) return outcome.fault;
  if (outcome.error === undefined) return 'upstream';
  try {
    return classifyFault(outcome.error);
  } catch {
    return 'upstream';
  }
}

function weightOf(instance: Instance): number {
  const w = instance.weight;
  return w === undefined || !(w > 0) || !Number.isFinite(w) ? 1 : w;
}

/** The balancer's view of one instance array: states aligned with the array, plus caches. */
export class View {
  readonly states: InstanceState[];
  readonly weighted: boolean;
  readonly totalWeight: number;
  /** Prefix sums of weights (weighted random). */
  readonly cumulative: Float64Array;
  /** Smooth weighted round robin's running weights. */
  readonly current: Float64Array;
  /** Lazily built ring (consistent hashing). */
  ring: { hashes: Uint32Array; owners: Uint32Array } | undefined;

  constructor(states: InstanceState[]) {
    this.states = states;
    this.cumulative = new Float64Array(states.length);
    this.current = new Float64Array(states.length);
    let total = 0;
    let weighted = false;
    for (let i = 0; i < states.length; i++) {
      const w = states[i]!.weight;
      if (w !== states[0]!.weight) weighted = true;
      total += w;
      this.cumulative[i] = total;
    }
    this.totalWeight = total;
    this.weighted = weighted;
  }
}

const MAX_VIEWS = 4;

/**
 * The shared engine of every balancer: per-instance state keyed by id, reusable picks, passive
 * outlier ejection (lazy, driven by `clock.now()`: no timers), and bounded memory. Subclasses
 * implement `choose`.
 */
export abstract class BalancerCore implements TrellisBalancer {
  protected readonly clock: Clock;
  protected readonly random: () => number;
  readonly #outlier: ParsedOutlier | undefined;
  readonly #retainMs: number;
  readonly #panicAllowed: boolean;
  /** True while `pick` retries with ejection ignored (every candidate was ejected). */
  #panic = false;
  readonly #states = new Map<string, InstanceState>();
  readonly #views = new Map<readonly Instance[], View>();
  #lastArray: readonly Instance[] | undefined;
  #lastView: View | undefined;
  #intervalStart: number;
  readonly #ejections = new Emitter<EjectionEvent>();
  /** Requests in flight across all instances. */
  protected totalInflight = 0;
  /** States with `ejected` set (some may have run out and not been un-ejected yet). */
  #ejectedCount = 0;
  #doneCount = 0;

  readonly onEject = this.#ejections.event;

  constructor(opts: ParsedBalancerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.#outlier = opts.outlier === false ? undefined : (opts.outlier ?? outlierSchema.parse({}));
    this.#retainMs = opts.retainMs;
    this.#panicAllowed = opts.whenAllEjected === 'ignore-ejection';
    this.#intervalStart = this.clock.now();
    if (opts.status !== undefined) {
      this.#unregister = opts.status.register(opts.name ?? 'service', this.#statusSource());
    }
  }

  #unregister: (() => void) | undefined;
  readonly #restores = new Emitter<Instance>();

  /** Unregisters from the status registry. The balancer owns no timers. */
  close(): void {
    this.#unregister?.();
  }

  /** Ejects an instance by hand until `restore(id)`; false when the id is unknown. */
  eject(id: string): boolean {
    const state = this.#states.get(id);
    if (state === undefined) return false;
    if (!state.ejected) this.#ejectedCount++;
    state.ejected = true;
    state.ejectedUntil = Number.POSITIVE_INFINITY;
    state.ejectionReason = 'manual';
    state.timesEjected++;
    this.#ejections.emit({
      instance: state.instance,
      reason: 'manual',
      durationMs: Number.POSITIVE_INFINITY,
      timesEjected: state.timesEjected,
    });
    return true;
  }

  /** Ends an instance's ejection now; false when the id is unknown. */
  restore(id: string): boolean {
    const state = this.#states.get(id);
    if (state === undefined) return false;
    if (state.ejected) {
      state.ejected = false;
      this.#ejectedCount--;
      state.consecutiveFailures = 0;
      state.ejectionReason = undefined;
      this.#restores.emit(state.instance);
    }
    return true;
  }

  #statusSource(): StatusSource {
    return {
      kind: 'service',
      snapshot: () => {
        const now = this.clock.now();
        const wall = Date.now();
        const instances = [];
        for (const s of this.#states.values()) {
          if (s.goneSince !== -1) continue;
          const ejected = s.ejected && now < s.ejectedUntil;
          const latency = s.ewma >= 0 ? s.ewma : s.lastMs;
          instances.push({
            id: s.id,
            url: s.instance.url,
            weight: s.weight,
            inflight: s.inflight,
            ...(latency >= 0 && { latencyMs: Math.round(latency * 10) / 10 }),
            requests: s.requests,
            failures: s.failures,
            ejected,
            ...(ejected && { ejectionReason: s.ejectionReason ?? 'outlier' }),
            ...(ejected &&
              Number.isFinite(s.ejectedUntil) && { ejectedUntil: wall + (s.ejectedUntil - now) }),
            timesEjected: s.timesEjected,
          });
        }
        return { balancer: this.constructor.name, instances };
      },
      events: (listener) => {
        const offEject = this.onEject((e) =>
          listener({
            type: 'ejected',
            severity: 'error',
            message: `${e.instance.id} ejected (${e.reason}${Number.isFinite(e.durationMs) ? `, ${Math.round(e.durationMs / 1000)} s` : ''})`,
            data: { instance: e.instance.id, reason: e.reason, timesEjected: e.timesEjected },
          }),
        );
        const offRestore = this.#restores.event((i) =>
          listener({ type: 'restored', message: `${i.id} restored`, data: { instance: i.id } }),
        );
        return () => {
          offEject();
          offRestore();
        };
      },
      eject: (id) => this.eject(id),
      restore: (id) => this.restore(id),
    };
  }

  /**
   * Picks among the eligible states of `view`; `undefined` when none is eligible. `now` is the
   * clock time for ejection checks, or 0 when no instance is ejected (the clock was not read).
   */
  protected abstract choose(
    view: View,
    now: number,
    exclude: ReadonlySet<string> | undefined,
    key: string | undefined,
  ): InstanceState | undefined;

  /** Called by `done()` before the outlier bookkeeping (peakEwma records latency here). */
  protected observe(_state: InstanceState, _outcome: PickOutcome): void {}

  pick(instances: readonly Instance[], opts?: PickOptions): Pick | undefined {
    if (instances.length === 0) return undefined;
    const view = instances === this.#lastArray ? this.#lastView! : this.#viewFor(instances);
    // The clock is read only when an ejection may have to be checked (or by peakEwma itself).
    const now = this.#ejectedCount > 0 ? this.clock.now() : 0;
    const exclude = opts?.exclude;
    const key = opts?.key;
    let state = this.choose(
      view,
      now,
      exclude !== undefined && exclude.size > 0 ? exclude : undefined,
      key,
    );
    if (state === undefined && exclude !== undefined && exclude.size > 0) {
      state = this.choose(view, now, undefined, key);
    }
    if (state === undefined && this.#panicAllowed && this.#ejectedCount > 0) {
      // Every candidate is ejected: route to them anyway rather than to nobody.
      this.#panic = true;
      try {
        state = this.choose(view, now, undefined, key);
      } finally {
        this.#panic = false;
      }
    }
    if (state === undefined) return undefined;
    state.inflight++;
    this.totalInflight++;
    return state.pick;
  }

  /** True when `state` may be picked now (un-ejects lazily once its ejection has run out). */
  protected eligible(
    state: InstanceState,
    now: number,
    exclude: ReadonlySet<string> | undefined,
  ): boolean {
    if (state.ejected) {
      if (now < state.ejectedUntil) return this.#panic;
      state.ejected = false;
      state.consecutiveFailures = 0;
      this.#ejectedCount--;
    }
    return exclude === undefined || !exclude.has(state.id);
  }

  isEjected(id: string): boolean {
    const s = this.#states.get(id);
    return s?.ejected === true && this.clock.now() < s.ejectedUntil;
  }

  inflight(id: string): number {
    return this.#states.get(id)?.inflight ?? 0;
  }

  get trackedIds(): number {
    return this.#states.size;
  }

  /** @internal Called through `Pick.done`. */
  done(state: InstanceState, outcome: PickOutcome): void {
    if (state.inflight > 0) {
      state.inflight--;
      this.totalInflight--;
    }
    // Only upstream faults count against an instance: a caller's abort or deadline, a request
    // it built wrong (undici refusing a CR/LF header) or a shed answer never eject one, nor
    // make it look slow.
    if (!outcome.ok && !countsAgainstUpstream(faultOfOutcome(outcome))) return;
    this.observe(state, outcome);
    state.requests++;
    state.lastMs = outcome.durationMs;
    if (!outcome.ok) state.failures++;
    const o = this.#outlier;
    if (o === undefined) return;
    let now: number;
    if (outcome.ok) {
      state.consecutiveFailures = 0;
      state.intervalOk++;
      // Successes check the interval clock every 64th time only (a clock read is the costliest
      // part of done()); failures always do.
      if ((++this.#doneCount & 63) !== 0) return;
      now = this.clock.now();
    } else {
      now = this.clock.now();
      state.consecutiveFailures++;
      state.intervalFail++;
      if (
        o.consecutiveFailures > 0 &&
        state.consecutiveFailures >= o.consecutiveFailures &&
        !state.ejected
      ) {
        this.#eject(state, now, 'consecutive-failures');
      }
    }
    if (now - this.#intervalStart >= o.intervalMs) this.#evaluateInterval(now, o);
  }

  #eject(state: InstanceState, now: number, reason: EjectionEvent['reason']): boolean {
    const o = this.#outlier!;
    // Count current ejections among the instances discovery still lists.
    let ejected = 0;
    let present = 0;
    for (const s of this.#states.values()) {
      if (s.goneSince !== -1) continue;
      present++;
      if (s.ejected && now < s.ejectedUntil) ejected++;
    }
    if (!(ejected < (o.maxEjectionPercent * Math.max(present, 1)) / 100)) return false;
    state.timesEjected++;
    const durationMs = Math.min(
      o.baseEjectionMs * state.timesEjected,
      Math.max(o.maxEjectionMs, o.baseEjectionMs),
    );
    state.ejected = true;
    state.ejectionReason = reason;
    this.#ejectedCount++;
    state.ejectedUntil = now + durationMs;
    state.consecutiveFailures = 0;
    this.#ejections.emit({
      instance: state.instance,
      reason,
      durationMs,
      timesEjected: state.timesEjected,
    });
    return true;
  }

  #evaluateInterval(now: number, o: ParsedOutlier): void {
    this.#intervalStart = now;
    if (o.failurePercent > 0) {
      let withVolume = 0;
      for (const s of this.#states.values()) {
        if (s.intervalOk + s.intervalFail >= o.failureMinRequests) withVolume++;
      }
      if (withVolume >= o.failureMinInstances) {
        for (const s of this.#states.values()) {
          const total = s.intervalOk + s.intervalFail;
          if (s.ejected || total < o.failureMinRequests) continue;
          if ((s.intervalFail * 100) / total >= o.failurePercent) {
            this.#eject(s, now, 'failure-rate');
          }
        }
      }
    }
    for (const s of this.#states.values()) {
      s.intervalOk = 0;
      s.intervalFail = 0;
      // A50: an instance that stayed un-ejected for a whole interval walks its multiplier back
      // down (evaluation is lazy, so several idle intervals count as one).
      if (s.timesEjected > 0 && now - s.ejectedUntil >= o.intervalMs) s.timesEjected--;
    }
  }

  #viewFor(instances: readonly Instance[]): View {
    let view = this.#views.get(instances);
    if (view === undefined) {
      view = this.#buildView(instances);
    } else {
      // Refresh LRU order.
      this.#views.delete(instances);
      this.#views.set(instances, view);
    }
    this.#lastArray = instances;
    this.#lastView = view;
    return view;
  }

  #buildView(instances: readonly Instance[]): View {
    const states: InstanceState[] = new Array(instances.length);
    for (let i = 0; i < instances.length; i++) {
      const inst = instances[i]!;
      let s = this.#states.get(inst.id);
      if (s === undefined) {
        s = new InstanceState(inst, this);
        this.#states.set(inst.id, s);
      } else if (s.instance !== inst) {
        s.instance = inst;
        s.pick.instance = inst;
        s.weight = weightOf(inst);
      }
      states[i] = s;
    }
    const view = new View(states);
    this.#views.set(instances, view);
    if (this.#views.size > MAX_VIEWS) {
      const oldest = this.#views.keys().next().value;
      if (oldest !== undefined) this.#views.delete(oldest);
    }
    this.#sweep();
    return view;
  }

  /** Marks states absent from every recent view as gone and drops them after `retainMs`. */
  #sweep(): void {
    const now = this.clock.now();
    const live = new Set<InstanceState>();
    for (const v of this.#views.values()) for (const s of v.states) live.add(s);
    for (const [id, s] of this.#states) {
      if (live.has(s)) {
        s.goneSince = -1;
        continue;
      }
      if (s.goneSince === -1) s.goneSince = now;
      // Drained, not cut: state with requests in flight stays until they finish.
      if (s.inflight === 0 && now - s.goneSince >= this.#retainMs) {
        if (s.ejected) this.#ejectedCount--;
        this.#states.delete(id);
      }
    }
  }

  /** A random eligible state: a few random draws, then a scan from a random start. */
  protected randomEligible(
    view: View,
    now: number,
    exclude: ReadonlySet<string> | undefined,
    not: InstanceState | undefined,
  ): InstanceState | undefined {
    const states = view.states;
    const n = states.length;
    for (let attempt = 0; attempt < 3; attempt++) {
      const s = states[Math.floor(this.random() * n)]!;
      if (s !== not && this.eligible(s, now, exclude)) return s;
    }
    const start = Math.floor(this.random() * n);
    for (let k = 0; k < n; k++) {
      const s = states[(start + k) % n]!;
      if (s !== not && this.eligible(s, now, exclude)) return s;
    }
    return undefined;
  }
}
