import type { Clock } from '../Clock.js';
import { describeThrown } from '../faults/describeThrown.js';

/** A check's status, as the IETF health check draft spells it. */
export type HealthStatus = 'pass' | 'warn' | 'fail';

/** What a check function may return: nothing or `true` (pass), `false` (fail), or details. */
export type CheckResult =
  | undefined
  | boolean
  | {
      status?: HealthStatus;
      observedValue?: unknown;
      observedUnit?: string;
      output?: string;
    };

/** A check function. It gets an `AbortSignal` that aborts when its `timeoutMs` passes. */
export type CheckFn = (ctx: { signal: AbortSignal }) => CheckResult | Promise<CheckResult>;

/** One health check's definition. */
export interface CheckDefinition {
  check: CheckFn;
  /** A failing critical check fails readiness (503); a failing non-critical one only warns. Default true. */
  critical?: boolean;
  /** Fails the check when it takes longer. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * Also run this check on the liveness probe. A failing liveness probe restarts the process,
   * so put only in-process checks here (never a database). Default false.
   */
  liveness?: boolean;
  /** A startup check: the service is not ready until it has passed once; never run after. */
  startup?: boolean;
  /** Reuse a result for this long. Default 0 (concurrent probes still share one run). */
  cacheMs?: number;
  /** The measurement part of the `component:measurement` key. Default `responseTime`. */
  measurement?: string;
  /** IETF `componentType`: `component`, `datastore` or `system`. */
  componentType?: string;
}

/** One entry of an IETF `checks` array. */
export interface CheckOutcome {
  status: HealthStatus;
  componentType?: string;
  observedValue?: unknown;
  observedUnit?: string;
  time: string;
  output?: string;
}

/** Runs one check with its timeout, caching and run sharing. */
export class HealthCheck {
  readonly name: string;
  /** `name:measurement`, the key in the IETF `checks` object. */
  readonly key: string;
  readonly critical: boolean;
  readonly liveness: boolean;
  readonly startup: boolean;
  /** For startup checks: has it passed once? */
  passedOnce = false;
  #def: CheckDefinition;
  #clock: Clock;
  #timeoutMs: number;
  #cacheMs: number;
  #last: { at: number; outcome: CheckOutcome } | undefined;
  #running: Promise<CheckOutcome> | undefined;
  #timers = new Set<ReturnType<Clock['setTimeout']>>();
  #controllers = new Set<AbortController>();

  constructor(name: string, def: CheckDefinition, clock: Clock) {
    this.name = name;
    this.key = name.includes(':') ? name : `${name}:${def.measurement ?? 'responseTime'}`;
    this.critical = def.critical ?? true;
    this.liveness = def.liveness ?? false;
    this.startup = def.startup ?? false;
    this.#def = def;
    this.#clock = clock;
    this.#timeoutMs = def.timeoutMs ?? 5_000;
    this.#cacheMs = def.cacheMs ?? 0;
  }

  /** The last outcome, if any, without running the check. */
  get last(): CheckOutcome | undefined {
    return this.#last?.outcome;
  }

  run(): Promise<CheckOutcome> {
    const last = this.#last;
    if (last && this.#cacheMs > 0 && this.#clock.now() - last.at < this.#cacheMs) {
      return Promise.resolve(last.outcome);
    }
    if (this.#running) return this.#running;
    // #runOnce never rejects; `finally` still clears the shared run whatever happens, so one
    // odd failure can never leave a settled promise behind as the answer to every later probe.
    const running = this.#runOnce()
      .then((outcome) => {
        this.#last = { at: this.#clock.now(), outcome };
        if (outcome.status !== 'fail') this.passedOnce = true;
        return outcome;
      })
      .finally(() => {
        if (this.#running === running) this.#running = undefined;
      });
    this.#running = running;
    return running;
  }

  async #runOnce(): Promise<CheckOutcome> {
    const clock = this.#clock;
    const started = clock.now();
    const controller = new AbortController();
    this.#controllers.add(controller);
    let timer: ReturnType<Clock['setTimeout']> | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = clock.setTimeout(() => {
        controller.abort(new Error(`timed out after ${this.#timeoutMs} ms`));
        resolve('timeout');
      }, this.#timeoutMs);
      this.#timers.add(timer);
    });
    const componentType = this.#def.componentType;
    const base = componentType === undefined ? {} : { componentType };
    try {
      const result = await Promise.race([
        Promise.resolve().then(() => this.#def.check({ signal: controller.signal })),
        timedOut,
      ]);
      const elapsed = Math.round((clock.now() - started) * 1000) / 1000;
      const time = new Date().toISOString();
      if (result === 'timeout') {
        return { ...base, status: 'fail', time, output: `timed out after ${this.#timeoutMs} ms` };
      }
      if (result === undefined || result === true) {
        return { ...base, status: 'pass', observedValue: elapsed, observedUnit: 'ms', time };
      }
      if (result === false) {
        return { ...base, status: 'fail', observedValue: elapsed, observedUnit: 'ms', time };
      }
      const custom = result.observedValue !== undefined;
      const outcome: CheckOutcome = {
        ...base,
        status: result.status ?? 'pass',
        observedValue: custom ? result.observedValue : elapsed,
        observedUnit: custom ? result.observedUnit : 'ms',
        time,
      };
      if (result.output !== undefined) outcome.output = result.output;
      return outcome;
    } catch (err) {
      return {
        ...base,
        status: 'fail',
        time: new Date().toISOString(),
        // Anything can be thrown (`Object.create(null)` has no toString): never String() it.
        output: describeThrown(err),
      };
    } finally {
      if (timer !== undefined) {
        clock.clearTimeout(timer);
        this.#timers.delete(timer);
      }
      this.#controllers.delete(controller);
    }
  }

  /** Aborts a running check and clears its timer. */
  close(): void {
    for (const t of this.#timers) this.#clock.clearTimeout(t);
    this.#timers.clear();
    for (const c of this.#controllers) c.abort(new Error('health closed'));
    this.#controllers.clear();
  }
}
