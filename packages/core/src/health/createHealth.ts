import type { Server } from 'node:http';
import { trace } from '@opentelemetry/api';
import { z } from 'zod';
import { type Clock, systemClock } from '../Clock.js';
import { Emitter, type Event } from '../Event.js';
import { type Logger, silentLogger } from '../Logger.js';
import { parseOptions } from '../options.js';
import {
  type CheckDefinition,
  type CheckOutcome,
  HealthCheck,
  type HealthStatus,
} from './HealthCheck.js';
import { ServerTracker } from './ServerTracker.js';

/** Where the service is in its life. */
export type HealthState = 'starting' | 'ready' | 'draining' | 'stopping' | 'stopped';

/** A state change, as emitted by {@link Health.onStateChange}. */
export interface HealthStateChange {
  from: HealthState;
  to: HealthState;
}

/** An `application/health+json` body (IETF draft-inadarei-api-health-check). */
export interface HealthBody {
  status: HealthStatus;
  version?: string;
  releaseId?: string;
  serviceId?: string;
  description?: string;
  output?: string;
  notes?: string[];
  checks?: Record<string, CheckOutcome[]>;
}

/** A probe answer: the IETF body and the HTTP status to send it with (200 pass/warn, 503 fail). */
export interface HealthReport {
  status: HealthStatus;
  httpStatus: 200 | 503;
  body: HealthBody;
}

/** A shutdown hook. Each gets `hookTimeoutMs`; a hook that throws is logged, not fatal. */
export type ShutdownHook = () => unknown;

export interface HealthOptions {
  /** Named checks; the key becomes `name:measurement` in the report. */
  checks?: Record<string, CheckDefinition>;
  /** How long readiness fails before the server stops accepting. Default 5000 ms (lightship). */
  drainDelayMs?: number;
  /** How long to wait for in-flight requests before dropping connections. Default 20000 ms. */
  shutdownTimeoutMs?: number;
  /** Time limit for each deregistration, cleanup and flush hook. Default 5000 ms. */
  hookTimeoutMs?: number;
  /** Signals that start the shutdown. Default `['SIGTERM', 'SIGINT']`; `false` installs none. */
  signals?: NodeJS.Signals[] | false;
  /** After a signal-started shutdown, call `process.exit` (0, or 1 if a step failed). Default true. */
  exit?: boolean;
  /** Reported in every body. */
  serviceId?: string;
  version?: string;
  releaseId?: string;
  description?: string;
  clock?: Clock;
  logger?: Logger;
}

/** Health probes and the graceful shutdown sequence of one service. */
export interface Health {
  /** The current state. */
  readonly state: HealthState;
  /** Fires on every state change. */
  readonly onStateChange: Event<HealthStateChange>;
  /** Liveness: passes unless a `liveness` check fails. Never fails because of shutdown. */
  live(): Promise<HealthReport>;
  /** Readiness: fails while starting, while shutting down, or when a critical check fails. */
  ready(): Promise<HealthReport>;
  /** Every check, with details; fails while starting or shutting down. */
  report(): Promise<HealthReport>;
  /** Runs after the drain delay, before connections close (discovery deregisters here). */
  addDeregistration(fn: ShutdownHook): () => void;
  /** Runs after in-flight requests finish, in reverse registration order. */
  addCleanup(fn: ShutdownHook): () => void;
  /** Runs last, to flush telemetry (the global OpenTelemetry provider is flushed too). */
  addFlush(fn: ShutdownHook): () => void;
  /** Follows a server's requests and connections for the shutdown sequence. Returns detach. */
  attach(server: Server): () => void;
  /** Requests in flight on attached servers. */
  readonly inFlight: number;
  /** Runs the shutdown sequence once; later calls return the same promise. */
  shutdown(): Promise<void>;
  /** Removes signal handlers, detaches servers, clears timers and listeners. Idempotent. */
  close(): void;
}

const hookSchema = z.custom<(...args: never[]) => unknown>(
  (v) => typeof v === 'function',
  'must be a function',
);

const checkSchema = z
  .object({
    check: hookSchema,
    critical: z.boolean().optional(),
    timeoutMs: z.number().int().positive().optional(),
    liveness: z.boolean().optional(),
    startup: z.boolean().optional(),
    cacheMs: z.number().int().nonnegative().optional(),
    measurement: z
      .string()
      .regex(/^[^:]+$/, 'must not contain ":"')
      .optional(),
    componentType: z.string().optional(),
  })
  .strict()
  .refine((c) => !(c.startup && c.liveness), {
    message: 'a check cannot be both startup and liveness',
  });

const optionsSchema = z
  .object({
    checks: z.record(z.string().min(1), checkSchema).optional(),
    drainDelayMs: z.number().int().nonnegative().optional(),
    shutdownTimeoutMs: z.number().int().nonnegative().optional(),
    hookTimeoutMs: z.number().int().positive().optional(),
    signals: z.union([z.array(z.string().regex(/^SIG[A-Z0-9]+$/)), z.literal(false)]).optional(),
    exit: z.boolean().optional(),
    serviceId: z.string().optional(),
    version: z.string().optional(),
    releaseId: z.string().optional(),
    description: z.string().optional(),
    clock: z
      .custom<Clock>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function',
        'must be a Clock',
      )
      .optional(),
    logger: z
      .custom<Logger>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Logger).warn === 'function',
        'must be a pino-compatible logger',
      )
      .optional(),
  })
  .strict();

const EXTERNAL_NAME =
  /db|database|sql|postgres|mysql|maria|mongo|redis|cache|kafka|rabbit|amqp|nats|queue|etcd|consul|elastic|http|api|upstream|service|dependency|remote|s3|storage/i;

type FlushableProvider = { forceFlush?: () => Promise<void> };

function worst(a: HealthStatus, b: HealthStatus): HealthStatus {
  if (a === 'fail' || b === 'fail') return 'fail';
  if (a === 'warn' || b === 'warn') return 'warn';
  return 'pass';
}

/**
 * Creates health probes and the graceful shutdown sequence. On SIGTERM/SIGINT or
 * `shutdown()`: readiness fails at once, then after `drainDelayMs` the deregistration hooks
 * run, attached servers stop accepting and close idle keep-alive connections, in-flight
 * requests get up to `shutdownTimeoutMs`, cleanup hooks run in reverse order, telemetry is
 * flushed, and the process exits (signals) or the promise resolves.
 *
 * @example
 * ```ts
 * import { createHealth } from '@trellis/core';
 *
 * const health = createHealth({
 *   checks: { db: { check: () => pool.query('select 1').then(() => true), timeoutMs: 1000 } },
 * });
 * const server = app.listen(3000);
 * health.attach(server);
 * health.addCleanup(() => pool.end());
 * ```
 */
export function createHealth(options: HealthOptions = {}): Health {
  const opts = parseOptions(optionsSchema, options, 'createHealth');
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silentLogger;
  const drainDelayMs = opts.drainDelayMs ?? 5_000;
  const shutdownTimeoutMs = opts.shutdownTimeoutMs ?? 20_000;
  const hookTimeoutMs = opts.hookTimeoutMs ?? 5_000;
  const exitOnSignal = opts.exit ?? true;

  const checks: HealthCheck[] = [];
  for (const [name, def] of Object.entries(options.checks ?? {})) {
    const check = new HealthCheck(name, def, clock);
    checks.push(check);
    if (check.liveness) {
      const why = EXTERNAL_NAME.test(name)
        ? 'it looks like an external dependency; a failing liveness probe restarts the process, so a dependency outage becomes a restart storm'
        : 'a failing liveness probe restarts the process: keep it to in-process state';
      logger.warn({ check: name }, `createHealth: check "${name}" is on liveness: ${why}`);
    }
  }
  const startupChecks = checks.filter((c) => c.startup);
  const readinessChecks = checks.filter((c) => !c.startup);
  const livenessChecks = checks.filter((c) => c.liveness);

  const stateEmitter = new Emitter<HealthStateChange>();
  let state: HealthState = startupChecks.length > 0 ? 'starting' : 'ready';
  const setState = (to: HealthState) => {
    if (state === to) return;
    const from = state;
    state = to;
    logger.info({ from, to }, `health: ${from} -> ${to}`);
    stateEmitter.emit({ from, to });
  };

  const deregistrations: ShutdownHook[] = [];
  const cleanups: ShutdownHook[] = [];
  const flushes: ShutdownHook[] = [];
  const trackers = new Map<Server, ServerTracker>();
  const timers = new Set<ReturnType<Clock['setTimeout']>>();
  let closed = false;
  let shutdownPromise: Promise<void> | undefined;

  const meta: Omit<HealthBody, 'status'> = {};
  if (opts.serviceId !== undefined) meta.serviceId = opts.serviceId;
  if (opts.version !== undefined) meta.version = opts.version;
  if (opts.releaseId !== undefined) meta.releaseId = opts.releaseId;
  if (opts.description !== undefined) meta.description = opts.description;

  const evaluate = async (
    list: readonly HealthCheck[],
    failStatus: (c: HealthCheck) => HealthStatus,
  ): Promise<{ status: HealthStatus; checks: Record<string, CheckOutcome[]> }> => {
    const outcomes = await Promise.all(list.map((c) => c.run()));
    let status: HealthStatus = 'pass';
    const out: Record<string, CheckOutcome[]> = {};
    for (let i = 0; i < list.length; i++) {
      const check = list[i] as HealthCheck;
      const outcome = outcomes[i] as CheckOutcome;
      const entries = out[check.key];
      if (entries === undefined) out[check.key] = [outcome];
      else entries.push(outcome);
      status = worst(status, outcome.status === 'fail' ? failStatus(check) : outcome.status);
    }
    return { status, checks: out };
  };

  const byCriticality = (c: HealthCheck): HealthStatus => (c.critical ? 'fail' : 'warn');

  const toReport = (
    status: HealthStatus,
    checksOut: Record<string, CheckOutcome[]> | undefined,
    output?: string,
  ): HealthReport => {
    const body: HealthBody = { status, ...meta };
    if (output !== undefined) body.output = output;
    if (checksOut !== undefined && Object.keys(checksOut).length > 0) body.checks = checksOut;
    return { status, httpStatus: status === 'fail' ? 503 : 200, body };
  };

  /** Runs pending startup checks; moves to `ready` once all passed. */
  const startup = async (): Promise<Record<string, CheckOutcome[]> | undefined> => {
    if (state !== 'starting') return undefined;
    const pending = startupChecks.filter((c) => !c.passedOnce);
    const result = await evaluate(pending, () => 'fail');
    if (state === 'starting' && startupChecks.every((c) => c.passedOnce)) setState('ready');
    return result.checks;
  };

  const shuttingDown = () => state === 'draining' || state === 'stopping' || state === 'stopped';

  const ready = async (): Promise<HealthReport> => {
    if (shuttingDown()) return toReport('fail', undefined, `shutting down (${state})`);
    const started = await startup();
    if (state === 'starting') return toReport('fail', started, 'starting');
    const result = await evaluate(readinessChecks, byCriticality);
    if (shuttingDown()) return toReport('fail', result.checks, `shutting down (${state})`);
    return toReport(result.status, result.checks);
  };

  const report = async (): Promise<HealthReport> => {
    const started = await startup();
    const result = await evaluate(readinessChecks, byCriticality);
    const all: Record<string, CheckOutcome[]> = { ...result.checks };
    for (const c of startupChecks) {
      const last = c.last;
      if (last !== undefined && started?.[c.key] === undefined) all[c.key] = [last];
    }
    if (started) Object.assign(all, started);
    if (shuttingDown()) return toReport('fail', all, `shutting down (${state})`);
    if (state === 'starting') return toReport('fail', all, 'starting');
    return toReport(result.status, all);
  };

  const live = async (): Promise<HealthReport> => {
    const result = await evaluate(livenessChecks, byCriticality);
    return toReport(result.status, result.checks);
  };

  // Pending waits of the shutdown sequence; close() cuts them short so nothing hangs.
  const wakers = new Set<() => void>();

  /** Resolves after `ms` on the clock, or at once when close() is called. */
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (closed) {
        resolve();
        return;
      }
      const wake = () => {
        wakers.delete(wake);
        clock.clearTimeout(timer);
        timers.delete(timer);
        resolve();
      };
      const timer = clock.setTimeout(wake, ms);
      timers.add(timer);
      wakers.add(wake);
    });

  /** True when `p` fulfils in time, false on timeout or close(); rejects when `p` does. */
  const within = (p: Promise<unknown>, ms: number): Promise<boolean> =>
    new Promise((resolve, reject) => {
      if (closed) {
        p.catch(() => {});
        resolve(false);
        return;
      }
      let settled = false;
      const settle = () => {
        if (settled) return false;
        settled = true;
        wakers.delete(wake);
        clock.clearTimeout(timer);
        timers.delete(timer);
        return true;
      };
      const wake = () => {
        if (settle()) resolve(false);
      };
      const timer = clock.setTimeout(wake, ms);
      timers.add(timer);
      wakers.add(wake);
      p.then(
        () => {
          if (settle()) resolve(true);
        },
        (err: unknown) => {
          if (settle()) reject(err);
        },
      );
    });

  /** Runs hooks in order; returns false if one threw or timed out. */
  const runHooks = async (kind: string, hooks: readonly ShutdownHook[]): Promise<boolean> => {
    let ok = true;
    for (const hook of hooks) {
      try {
        const done = await within(Promise.resolve().then(hook), hookTimeoutMs);
        if (!done) {
          ok = false;
          logger.error({ kind, timeoutMs: hookTimeoutMs }, `health: ${kind} hook timed out`);
        }
      } catch (err) {
        ok = false;
        logger.error({ kind, err }, `health: ${kind} hook failed`);
      }
    }
    return ok;
  };

  const sequence = async (): Promise<boolean> => {
    let ok = true;
    // 1. Readiness fails at once (ready() checks the state).
    setState('draining');
    // 2. Drain delay, so load balancers see the failing readiness probe and stop routing here.
    //    Skipped when every attached server has already stopped listening.
    const listening = [...trackers.keys()].some((s) => s.listening);
    if (drainDelayMs > 0 && (trackers.size === 0 || listening)) await sleep(drainDelayMs);
    setState('stopping');
    // 3. Deregister from discovery.
    ok = (await runHooks('deregistration', [...deregistrations])) && ok;
    // 4. Stop accepting, close idle keep-alives, mark in-flight responses `Connection: close`.
    const list = [...trackers.values()];
    const serversClosed = Promise.all(list.map((t) => t.stopAccepting()));
    // 5. Wait for in-flight requests up to the deadline.
    const drained = await within(Promise.all(list.map((t) => t.idle())), shutdownTimeoutMs);
    if (!drained) {
      ok = false;
      const inFlight = list.reduce((n, t) => n + t.inFlight, 0);
      logger.warn(
        { inFlight, timeoutMs: shutdownTimeoutMs },
        'health: in-flight requests did not finish in time; closing their connections',
      );
      for (const t of list) t.destroyAll();
    }
    await within(serversClosed, hookTimeoutMs);
    // 6. Cleanup hooks, last registered first.
    ok = (await runHooks('cleanup', [...cleanups].reverse())) && ok;
    // 7. Flush telemetry.
    const provider = trace.getTracerProvider() as FlushableProvider & {
      getDelegate?: () => FlushableProvider;
    };
    const delegate = provider.getDelegate?.() ?? provider;
    const flushGlobal: ShutdownHook[] =
      typeof delegate.forceFlush === 'function' ? [() => delegate.forceFlush?.()] : [];
    ok = (await runHooks('flush', [...flushes, ...flushGlobal])) && ok;
    setState('stopped');
    return ok;
  };

  const shutdown = (): Promise<void> => {
    if (closed) return Promise.resolve();
    shutdownPromise ??= sequence().then(() => undefined);
    return shutdownPromise;
  };

  const signals = opts.signals === false ? [] : (opts.signals ?? ['SIGTERM', 'SIGINT']);
  const onSignal = (signal: NodeJS.Signals) => {
    if (shutdownPromise !== undefined) {
      logger.warn({ signal }, 'health: second signal during shutdown');
      if (exitOnSignal) process.exit(1);
      return;
    }
    logger.info({ signal }, 'health: shutdown signal received');
    shutdownPromise = sequence().then(
      (ok) => {
        if (exitOnSignal) process.exit(ok ? 0 : 1);
      },
      (err: unknown) => {
        logger.error({ err }, 'health: shutdown failed');
        if (exitOnSignal) process.exit(1);
      },
    );
  };
  for (const s of signals) process.on(s as NodeJS.Signals, onSignal);

  const addTo = (list: ShutdownHook[], kind: string, fn: ShutdownHook): (() => void) => {
    if (typeof fn !== 'function') {
      parseOptions(z.object({ fn: hookSchema }), { fn }, `health.${kind}`);
    }
    list.push(fn);
    return () => {
      const i = list.indexOf(fn);
      if (i !== -1) list.splice(i, 1);
    };
  };

  return {
    get state() {
      return state;
    },
    onStateChange: stateEmitter.event,
    live,
    ready,
    report,
    addDeregistration: (fn) => addTo(deregistrations, 'addDeregistration', fn),
    addCleanup: (fn) => addTo(cleanups, 'addCleanup', fn),
    addFlush: (fn) => addTo(flushes, 'addFlush', fn),
    attach(server) {
      if (closed) return () => {};
      const existing = trackers.get(server);
      if (existing === undefined) trackers.set(server, new ServerTracker(server));
      return () => {
        trackers.get(server)?.detach();
        trackers.delete(server);
      };
    },
    get inFlight() {
      let n = 0;
      for (const t of trackers.values()) n += t.inFlight;
      return n;
    },
    shutdown,
    close() {
      if (closed) return;
      closed = true;
      for (const s of signals) process.removeListener(s as NodeJS.Signals, onSignal);
      for (const wake of [...wakers]) wake();
      for (const t of timers) clock.clearTimeout(t);
      timers.clear();
      for (const c of checks) c.close();
      for (const t of trackers.values()) t.detach();
      trackers.clear();
      stateEmitter.clear();
    },
  };
}
