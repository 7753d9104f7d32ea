import { AsyncLocalStorage } from 'node:async_hooks';
import { type Clock, systemClock } from './Clock.js';
import { clampDelay } from './time/duration.js';

/**
 * What Trellis knows about the request being served, carried through async calls so logs,
 * outbound calls and spans correlate and deadlines propagate.
 */
export interface RequestContext {
  readonly requestId?: string;
  readonly traceId?: string;
  /** Absolute deadline on the `clock`'s time line (`clock.now()` units). */
  readonly deadline?: number;
  /** The clock the deadline was set against; defaults to the system clock. */
  readonly clock?: Clock;
}

/**
 * Name of the header that carries the remaining time budget, in whole milliseconds, between
 * Trellis services. Relative, like gRPC's `grpc-timeout`, so clock skew between hosts does not
 * matter.
 */
export const DEADLINE_HEADER = 'x-trellis-deadline-ms';

// One storage per process, shared by every copy of @trellis/core that is loaded, so a deadline
// set by one copy is seen by another. This is the only process-wide state in Trellis.
const kStorage = Symbol.for('trellis.requestContext');
type GlobalWithStorage = typeof globalThis & {
  [kStorage]?: AsyncLocalStorage<RequestContext>;
};
const g = globalThis as GlobalWithStorage;
g[kStorage] ??= new AsyncLocalStorage<RequestContext>();
const storage: AsyncLocalStorage<RequestContext> = g[kStorage];

/** The current request context, or undefined outside one. */
export function getRequestContext(): RequestContext | undefined {
  return storage.getStore();
}

/** Runs `fn` with `ctx` merged over the current context. */
export function runWithContext<R>(ctx: RequestContext, fn: () => R): R {
  const parent = storage.getStore();
  return storage.run(parent ? { ...parent, ...ctx } : ctx, fn);
}

/**
 * Runs `fn` with a deadline `ms` from now; an existing earlier deadline wins (deadlines only
 * shrink as they travel inward).
 */
export function runWithDeadline<R>(ms: number, fn: () => R, clock: Clock = systemClock): R {
  const current = remainingMs(clock);
  const budget = current === undefined ? ms : Math.min(ms, current);
  return runWithContext({ deadline: clock.now() + budget, clock }, fn);
}

/**
 * Milliseconds left before the ambient deadline (may be negative once it has passed), or
 * undefined when no deadline is set.
 */
export function remainingMs(clock?: Clock): number | undefined {
  const ctx = storage.getStore();
  if (ctx?.deadline === undefined) return undefined;
  const c = ctx.clock ?? clock ?? systemClock;
  return ctx.deadline - c.now();
}

/**
 * Parses a `x-trellis-deadline-ms` header value; undefined when absent or malformed. The value
 * comes from the wire, so it is clamped to what a timer can hold (2³¹−1 ms, about
 * 24.8 days): `9999999999` is a very long budget, not one that runs out after 1 ms.
 */
export function parseDeadlineHeader(value: string | string[] | undefined): number | undefined {
  const raw = Array.isArray(value) ? value[0] : value;
  if (raw === undefined || !/^\d{1,10}$/.test(raw)) return undefined;
  return clampDelay(Number(raw));
}
