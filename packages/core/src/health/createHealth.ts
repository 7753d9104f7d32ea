import type { Server } from 'node:http';
import { z } from 'zod';
import { type Clock, systemClock } from '../Clock.js';
import { Emitter, type Event } from '../Event.js';
import { type Logger, silentLogger } from '../Logger.js';
import { parseOptions } from '../options.js';
import { durationMs } from '../time/duration.js';
import { type CheckDefinition, HealthCheck } from './HealthCheck.js';
import { type HealthBody, HealthProbes, type HealthReport } from './HealthProbes.js';
import { type HealthState, type ShutdownHook, ShutdownSequence } from './ShutdownSequence.js';

export type { HealthBody, HealthReport } from './HealthProbes.js';
export type { HealthState, ShutdownHook } from './ShutdownSequence.js';

/** A state change, as emitted by {@link Health.onStateChange}. */
export interface HealthStateChange {
  from: HealthState;
  to: HealthState;
}

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
    timeoutMs: durationMs({ positive: true }).optional(),
    liveness: z.boolean().optional(),
    startup: z.boolean().optional(),
    cacheMs: durationMs().optional(),
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
    drainDelayMs: durationMs().optional(),
    shutdownTimeoutMs: durationMs().optional(),
    hookTimeoutMs: durationMs({ positive: true }).optional(),
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

  const meta: Omit<HealthBody, 'status'> = {};
  if (opts.serviceId !== undefined) meta.serviceId = opts.serviceId;
  if (opts.version !== undefined) meta.version = opts.version;
  if (opts.releaseId !== undefined) meta.releaseId = opts.releaseId;
  if (opts.description !== undefined) meta.description = opts.description;

  const stateEmitter = new Emitter<HealthStateChange>();
  let state: HealthState = 'ready';
  const setState = (to: HealthState) => {
    if (state === to) return;
    const from = state;
    state = to;
    logger.info({ from, to }, `health: ${from} -> ${to}`);
    stateEmitter.emit({ from, to });
  };
  const probes = new HealthProbes(checks, meta, () => state, setState);
  if (probes.hasStartupChecks) state = 'starting';

  const sequence = new ShutdownSequence({
    clock,
    logger,
    drainDelayMs: opts.drainDelayMs ?? 5_000,
    shutdownTimeoutMs: opts.shutdownTimeoutMs ?? 20_000,
    hookTimeoutMs: opts.hookTimeoutMs ?? 5_000,
    signals: opts.signals === false ? [] : (opts.signals ?? ['SIGTERM', 'SIGINT']),
    exit: opts.exit ?? true,
    setState,
  });
  let closed = false;

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
    live: () => probes.live(),
    ready: () => probes.ready(),
    report: () => probes.report(),
    addDeregistration: (fn) => addTo(sequence.deregistrations, 'addDeregistration', fn),
    addCleanup: (fn) => addTo(sequence.cleanups, 'addCleanup', fn),
    addFlush: (fn) => addTo(sequence.flushes, 'addFlush', fn),
    attach: (server: Server) => sequence.attach(server),
    get inFlight() {
      return sequence.inFlight;
    },
    shutdown: () => sequence.shutdown(),
    close() {
      if (closed) return;
      closed = true;
      sequence.close();
      for (const c of checks) c.close();
      stateEmitter.clear();
    },
  };
}
