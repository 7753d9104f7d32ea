/**
 * The concurrency stage (issue 22, "Gateway"): per route, an adaptive concurrency limit
 * (`adaptiveLimit` from `@trellis/resilience`) and deadline shedding, checked by core's
 * `createShedder` after auth and rate limiting and before an instance is picked. A refused
 * request gets 503 `TRELLIS_SHED` with `Retry-After` and `x-trellis-shed: <reason>` through the
 * one error path; it never reaches an upstream, so it never counts against a breaker. The permit
 * is released when the response closes (its latency teaches the limit).
 *
 * The shedder reads the deadline the gateway decided on, never the client's header as sent: an
 * untrusted peer's `x-trellis-deadline-ms` is ignored (the route's `timeouts.headersMs` is the
 * deadline), a trusted peer's counts when shorter than the route's timeout, exactly as the proxy
 * terminal forwards it upstream. WebSocket upgrades are not limited (a tunnel would hold a slot
 * for its whole life).
 */
import type { IncomingMessage } from 'node:http';
import {
  type Clock,
  ConfigError,
  createShedder,
  DEADLINE_HEADER,
  type Metrics,
  parseDeadlineHeader,
  type Shedder,
  ShedError,
} from '@trellis/core';
import { type AdaptiveLimitPolicy, adaptiveLimit, instrument } from '@trellis/resilience';
import { z } from 'zod';
import type { GatewayMiddleware } from '../chain/GatewayMiddleware.js';
import type { RequestContext } from '../chain/RequestContext.js';

const adaptiveObject = z
  .object({
    algorithm: z
      .enum(['gradient2', 'vegas', 'aimd'])
      .optional()
      .describe('Limit algorithm (Netflix concurrency-limits ports). Default `gradient2`.'),
    min: z.number().int().min(1).optional().describe('Lowest limit. Default 20 (vegas: 1).'),
    max: z.number().int().min(1).optional().describe('Highest limit. Default 200 (vegas: 1000).'),
    initial: z.number().int().min(1).optional().describe('Starting limit. Default 20.'),
    queue: z
      .number()
      .int()
      .min(0)
      .optional()
      .describe('Requests that may wait (FIFO) for a slot when the limit is full. Default 0.'),
    partitions: z
      .record(z.string().min(1), z.number().min(0).max(1))
      .optional()
      .describe(
        'Guaranteed shares by partition (header `x-trellis-partition`), e.g. `{ "critical": 0.8, "batch": 0.2 }`.',
      ),
    gradient2: z
      .record(z.string(), z.number())
      .optional()
      .describe('Gradient2 parameters (see the resilience README).'),
    vegas: z.record(z.string(), z.number()).optional().describe('Vegas parameters.'),
    aimd: z.record(z.string(), z.number()).optional().describe('AIMD parameters.'),
    window: z
      .union([z.boolean(), z.record(z.string(), z.number())])
      .optional()
      .describe('Sample windows (`false` turns them off).'),
  })
  .strict()
  .superRefine((o, ctx) => {
    // The policy's own validation (min <= max, initial within bounds, parameter names...),
    // reported at the field's path.
    try {
      adaptiveLimit(o as Parameters<typeof adaptiveLimit>[0]);
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      for (const issue of err.issues ?? [{ path: '', message: err.message }]) {
        const path = issue.path === '' ? [] : issue.path.split('.');
        ctx.addIssue({ code: 'custom', path, message: issue.message });
      }
    }
  });

export const routeConcurrencySchema = z
  .object({
    adaptive: z
      .preprocess((v) => (v === true ? {} : v), adaptiveObject)
      .describe(
        'Adaptive concurrency limit of the route (`true`: the defaults of `adaptiveLimit`); when full: 503 `TRELLIS_SHED` + Retry-After.',
      ),
    deadline: z
      .boolean()
      .default(true)
      .describe(
        "Also refuse requests whose deadline cannot be met (a trusted caller's `x-trellis-deadline-ms` shorter than the route's recent median latency).",
      ),
  })
  .strict()
  .describe('Overload protection of the route: adaptive limit and deadline shedding (issue 22).');

export type RouteConcurrencyConfig = z.output<typeof routeConcurrencySchema>;

/** The partition header read when `partitions` are configured. */
export const PARTITION_HEADER = 'x-trellis-partition';

export interface ConcurrencyDeps {
  readonly clock: Clock;
  readonly metrics?: Metrics | undefined;
}

/** One route's limit and shedder; `close()` stops them (on reload or shutdown). */
export interface RouteConcurrency {
  readonly stage: GatewayMiddleware;
  readonly limit: AdaptiveLimitPolicy;
  close(): void;
}

/** Builds the stage of one route (at generation build time). */
export function concurrencyStage(
  config: RouteConcurrencyConfig,
  route: { readonly id: string; readonly headersMs: number },
  deps: ConcurrencyDeps,
): RouteConcurrency {
  const limit = adaptiveLimit({
    ...(config.adaptive as Parameters<typeof adaptiveLimit>[0]),
    clock: deps.clock,
  });
  if (deps.metrics !== undefined) {
    instrument(limit, { registry: deps.metrics.registry, name: route.id });
  }
  const partitioned = config.adaptive.partitions !== undefined;
  const shedder: Shedder = createShedder(
    {
      limit,
      deadline: config.deadline,
      clock: deps.clock,
      ...(partitioned && {
        partition: (req: IncomingMessage) => {
          const v = req.headers[PARTITION_HEADER];
          return typeof v === 'string' ? v : undefined;
        },
      }),
    },
    { metrics: deps.metrics },
  );
  const headersMs = route.headersMs;
  const stage: GatewayMiddleware = (c, next) => {
    const ctx = c as RequestContext;
    // A WebSocket tunnel lives for minutes: it would hold a slot and teach the limit its length.
    if (ctx.upgrade !== undefined) return next();
    const refused = shedder.admit(admissionView(ctx, headersMs), ctx.res, route.id);
    if (refused !== undefined) {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(refused.headers)) headers[k] = String(v);
      const reason = refused.reason;
      ctx.reply(
        new ShedError(refused.problem.detail ?? `shed (${reason})`, {
          reason,
          retryAfterMs: Number(refused.headers['retry-after']) * 1000,
        }),
        headers,
      );
      return Promise.resolve();
    }
    return next();
  };
  return {
    stage,
    limit,
    close: () => shedder.close(),
  };
}

/**
 * What the shedder sees of a request: its method, the partition header and the deadline the
 * gateway decided on. The path is not given: core's shedder exempts `/health`, `/metrics` and
 * `/admin/*` by path, which on the gateway's public port are routes like any other (the
 * gateway's own health answers never reach a route's chain).
 */
function admissionView(ctx: RequestContext, headersMs: number): IncomingMessage {
  let deadline = headersMs;
  if (ctx.peerTrusted) {
    const d = parseDeadlineHeader(ctx.req.headers[DEADLINE_HEADER]);
    if (d !== undefined && d < deadline) deadline = d;
  }
  const partition = ctx.req.headers[PARTITION_HEADER];
  return {
    method: ctx.req.method,
    url: '/',
    headers: {
      [DEADLINE_HEADER]: String(deadline),
      ...(partition !== undefined && { [PARTITION_HEADER]: partition }),
    },
  } as unknown as IncomingMessage;
}
