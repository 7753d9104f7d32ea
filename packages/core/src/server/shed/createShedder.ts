/**
 * Server admission (load shedding) shared by the Express and Fastify adapters
 * (`trellis({ shed: {...} })`). Checks, in this order, each answered at once with 503,
 * `Retry-After`, `x-trellis-shed: <reason>` and a problem+json body of code `TRELLIS_SHED`:
 *
 * 1. `deadline`: the caller's `x-trellis-deadline-ms` has run out, or the time left is shorter
 *    than the median latency this route has shown lately (it cannot be met);
 * 2. `limit`: the concurrency limiter (e.g. `adaptiveLimit()` from `@trellis/resilience`) is full;
 * 3. `event-loop`: event-loop delay or utilisation is over its threshold (as under-pressure
 *    measures them; off unless set).
 *
 * Health, readiness, metrics and admin paths are never shed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Counter } from 'prom-client';
import { z } from 'zod';
import { type Clock, systemClock } from '../../Clock.js';
import { DEADLINE_HEADER, parseDeadlineHeader } from '../../context.js';
import { ShedError } from '../../errors.js';
import { SHED_HEADER } from '../../faults/classifyFault.js';
import type { Metrics } from '../../metrics/createMetrics.js';
import { parseOptions } from '../../options.js';
import { type Problem, problemOf, writeProblem } from '../../problem/Problem.js';
import { durationMs } from '../../time/duration.js';
import type { AdmissionLimiter, AdmissionPermit, PermitOutcome } from './AdmissionLimiter.js';
import { EventLoopMonitor } from './EventLoopMonitor.js';
import { RouteLatency } from './RouteLatency.js';

/** Why a request was shed: the value of `x-trellis-shed` and the `reason` metric label. */
export type ShedReason = 'deadline' | 'limit' | 'event-loop';

export interface ShedOptions {
  /**
   * The concurrency limiter consulted for every request, e.g. `adaptiveLimit()` from
   * `@trellis/resilience` (any {@link AdmissionLimiter}). Default none.
   */
  limit?: AdmissionLimiter;
  /** Shed requests whose deadline has passed or cannot be met. Default true. */
  deadline?: boolean;
  /** Shed while the mean event-loop delay exceeds this (ms). Default 0: off. */
  maxEventLoopDelayMs?: number;
  /** Shed while event-loop utilisation (0-1) exceeds this. Default 0: off. */
  maxEventLoopUtilization?: number;
  /** How often the event loop is sampled. Default 1000 ms (under-pressure's default). */
  sampleIntervalMs?: number;
  /** The limiter partition of a request (e.g. from a header). Default none. */
  partition?: (req: IncomingMessage) => string | undefined;
  /** Requests never to shed, besides health, metrics and `/admin/` (always exempt). */
  exempt?: (req: IncomingMessage) => boolean;
  clock?: Clock;
}

const fn = <F>() => z.custom<F>((v) => typeof v === 'function', 'must be a function');

export const shedOptionsSchema = z.strictObject({
  limit: z
    .custom<AdmissionLimiter>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as AdmissionLimiter).tryAcquire === 'function',
      'must be an AdmissionLimiter (e.g. adaptiveLimit() from @trellis/resilience)',
    )
    .optional(),
  deadline: z.boolean().optional(),
  maxEventLoopDelayMs: durationMs().optional(),
  maxEventLoopUtilization: z.number().min(0).max(1).optional(),
  sampleIntervalMs: durationMs({ min: 10, max: 60_000 }).optional(),
  partition: fn<(req: IncomingMessage) => string | undefined>().optional(),
  exempt: fn<(req: IncomingMessage) => boolean>().optional(),
  clock: z
    .custom<Clock>(
      (v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function',
      'must be a Clock',
    )
    .optional(),
});

/** The counter of shed requests, by reason. */
export const SHED_METRIC = 'trellis_server_shed_total';

/** A refusal: the problem body and the headers (`Retry-After`, `x-trellis-shed`) to answer with. */
export interface ShedAnswer {
  readonly reason: ShedReason;
  readonly problem: Problem;
  readonly headers: Record<string, string | number>;
}

export interface Shedder {
  /**
   * Decides on one request: admits it (returns undefined; its permit is released when `res`
   * closes) or refuses it (returns the 503 to send: {@link writeShed} writes it on a plain
   * response). `route` is the route template when the framework knows it already.
   */
  admit(
    req: IncomingMessage,
    res: ServerResponse,
    route: string | undefined,
  ): ShedAnswer | undefined;
  /** Stops the event-loop sampling. */
  close(): void;
}

export interface ShedderContext {
  metrics?: Metrics | undefined;
  basePath?: string | undefined;
  /** The route template once the framework knows it (read when the response closes). */
  routeOf?: (req: IncomingMessage, res: ServerResponse) => string | undefined;
}

function isClosed(res: ServerResponse): boolean {
  if ((res as { closed?: boolean }).closed === true || res.destroyed) return true;
  return res.socket?.destroyed === true;
}

function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.indexOf('?');
  return q === -1 ? u : u.slice(0, q);
}

/** A learned `METHOD path` -> route template cache bound (Express routes are known late). */
const MAX_LEARNED = 10_000;

class ShedderImpl implements Shedder {
  readonly #o: ShedOptions;
  readonly #clock: Clock;
  readonly #latency: RouteLatency;
  readonly #monitor: EventLoopMonitor | undefined;
  readonly #counter: Counter<'reason'> | undefined;
  readonly #exact: Set<string>;
  readonly #adminPrefixes: string[];
  readonly #routeOf: ShedderContext['routeOf'];
  readonly #learned = new Map<string, string>();

  constructor(o: ShedOptions, ctx: ShedderContext) {
    this.#o = o;
    this.#clock = o.clock ?? systemClock;
    this.#latency = new RouteLatency(this.#clock);
    const delay = o.maxEventLoopDelayMs ?? 0;
    const elu = o.maxEventLoopUtilization ?? 0;
    if (delay > 0 || elu > 0) this.#monitor = new EventLoopMonitor(o.sampleIntervalMs ?? 1_000);
    const base = ctx.basePath ?? '';
    this.#exact = new Set(
      ['/health', '/health/live', '/health/ready', '/metrics'].map((p) => base + p),
    );
    this.#adminPrefixes = [`${base}/admin`, '/admin'];
    this.#routeOf = ctx.routeOf;
    const registry = ctx.metrics?.registry;
    if (registry !== undefined) {
      this.#counter =
        (registry.getSingleMetric(SHED_METRIC) as Counter<'reason'> | undefined) ??
        new Counter({
          name: SHED_METRIC,
          help: 'Requests a Trellis server refused to protect itself (503 TRELLIS_SHED), by reason.',
          labelNames: ['reason'],
          registers: [registry],
        });
    }
  }

  #exempt(req: IncomingMessage, path: string): boolean {
    if (this.#exact.has(path)) return true;
    for (const p of this.#adminPrefixes) {
      if (path === p || path.startsWith(`${p}/`)) return true;
    }
    return this.#o.exempt?.(req) === true;
  }

  admit(
    req: IncomingMessage,
    res: ServerResponse,
    route: string | undefined,
  ): ShedAnswer | undefined {
    const path = pathOf(req.url);
    if (this.#exempt(req, path)) return undefined;
    // The caller left before the request was read: nothing to admit, and a permit taken now
    // would never see the response's 'close' (it has fired already).
    if (isClosed(res)) return undefined;
    const o = this.#o;
    const now = this.#clock.now();
    const method = req.method ?? 'GET';
    const key = route === undefined ? `${method} ${path}` : undefined;
    const known = route ?? (key === undefined ? undefined : this.#learned.get(key));
    let deadline: number | undefined;
    if (o.deadline !== false) {
      const budget = parseDeadlineHeader(req.headers[DEADLINE_HEADER]);
      if (budget !== undefined) {
        deadline = now + budget;
        if (budget <= 0) return this.#shed('deadline', 1_000, 'the deadline has passed');
        const p50 = known !== undefined ? this.#latency.p50(known) : this.#latency.minP50();
        if (p50 !== undefined && budget < p50) {
          return this.#shed(
            'deadline',
            p50,
            `${Math.round(budget)} ms left, the route usually takes ${Math.round(p50)} ms`,
          );
        }
      }
    }
    let permit: AdmissionPermit | undefined;
    if (o.limit !== undefined) {
      permit = o.limit.tryAcquire(o.partition?.(req));
      if (permit === undefined) {
        return this.#shed('limit', o.limit.retryAfterMs ?? 1_000, 'concurrency limit reached');
      }
    }
    const m = this.#monitor;
    if (m !== undefined) {
      const maxDelay = o.maxEventLoopDelayMs ?? 0;
      const maxElu = o.maxEventLoopUtilization ?? 0;
      if ((maxDelay > 0 && m.delayMs > maxDelay) || (maxElu > 0 && m.utilization > maxElu)) {
        permit?.release('ignored');
        return this.#shed('event-loop', o.sampleIntervalMs ?? 1_000, 'event loop overloaded');
      }
    }
    res.once('close', () => this.#done(req, res, now, deadline, permit, key, route));
    return undefined;
  }

  #done(
    req: IncomingMessage,
    res: ServerResponse,
    start: number,
    deadline: number | undefined,
    permit: AdmissionPermit | undefined,
    key: string | undefined,
    known: string | undefined,
  ): void {
    const end = this.#clock.now();
    const late = deadline !== undefined && end > deadline;
    let outcome: PermitOutcome;
    if (res.writableEnded) {
      outcome = late ? 'dropped' : res.statusCode >= 500 ? 'ignored' : 'success';
      if (res.statusCode < 500) {
        const route = known ?? this.#routeOf?.(req, res);
        if (route !== undefined) {
          this.#latency.record(route, end - start);
          if (key !== undefined && !this.#learned.has(key)) {
            if (this.#learned.size >= MAX_LEARNED) this.#learned.clear();
            this.#learned.set(key, route);
          }
        }
      }
    } else {
      // The caller went away: its own choice before its deadline, our slowness after it.
      outcome = late ? 'dropped' : 'ignored';
    }
    permit?.release(outcome);
  }

  #shed(reason: ShedReason, retryAfterMs: number, detail: string): ShedAnswer {
    this.#counter?.inc({ reason });
    const err = new ShedError(`shed (${reason}): ${detail}`, { reason, retryAfterMs });
    return {
      reason,
      problem: problemOf(err),
      headers: {
        'retry-after': Math.max(1, Math.ceil(retryAfterMs / 1000)),
        [SHED_HEADER]: reason,
      },
    };
  }

  close(): void {
    this.#monitor?.close();
  }
}

/**
 * Creates the admission check the adapters run for `trellis({ shed })`. Exported for servers
 * without an adapter (and the gateway).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createShedder, writeShed } from '@trellis/core';
 *
 * const shed = createShedder({ maxEventLoopDelayMs: 100 });
 * createServer((req, res) => {
 *   const refused = shed.admit(req, res, '/hello');
 *   if (refused) return writeShed(res, refused); // 503 TRELLIS_SHED
 *   res.end('hello');
 * }).listen(3000);
 * ```
 */
export function createShedder(options: ShedOptions = {}, context: ShedderContext = {}): Shedder {
  const o = parseOptions(shedOptionsSchema, options, 'shed') as ShedOptions;
  return new ShedderImpl(o, context);
}

/** Writes a refusal from {@link Shedder.admit} on a plain Node response. */
export function writeShed(res: ServerResponse, answer: ShedAnswer): void {
  writeProblem(res, answer.problem, answer.headers);
}

/**
 * The adapters' shed options with the deadline check on only where the service trusts the
 * caller's `x-trellis-deadline-ms` (`trustDeadline`): an untrusted header must neither shed a
 * request nor, by making answers look late, teach the limiter to shrink for everyone.
 */
export function trustedShed(shed: ShedOptions, trustDeadline: boolean | undefined): ShedOptions {
  return trustDeadline === true ? shed : { ...shed, deadline: false };
}
