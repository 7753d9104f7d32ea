import { z } from 'zod';
import type { AdminOptions } from '../admin/createAdminHandler.js';
import type { Health } from '../health/createHealth.js';
import type { Metrics } from '../metrics/createMetrics.js';
import type { ServerTracing } from '../tracing/createServerTracing.js';
import { type ShedOptions, shedOptionsSchema } from './shed/createShedder.js';

/** Option fields shared by the adapters, the request observer and the observability handler. */
export const healthField = z.custom<Health>(
  (v) => typeof v === 'object' && v !== null && typeof (v as Health).ready === 'function',
  'must be a Health from createHealth()',
);

export const metricsField = z.custom<Metrics>(
  (v) =>
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Metrics).observeServerRequest === 'function' &&
    typeof (v as Metrics).text === 'function',
  'must be Metrics from createMetrics()',
);

export const tracingField = z.union([
  z.boolean(),
  z.custom<ServerTracing>(
    (v) => typeof v === 'object' && v !== null && typeof (v as ServerTracing).start === 'function',
    'must be true, false or a ServerTracing from createServerTracing()',
  ),
]);

export const basePathField = z
  .string()
  .regex(/^(\/[^/?#]+)+$/, 'must start with "/" and not end with "/"');

/** The options both framework adapters take (each adapter documents its own `health`). */
export interface AdapterOptions {
  /** Serves the health endpoints. */
  health?: Health;
  /** Serves `/metrics` and records `http_server_request_duration_seconds` per route template. */
  metrics?: Metrics;
  /** SERVER spans: `true` (default, global OpenTelemetry provider), `false`, or your own. */
  tracing?: ServerTracing | boolean;
  /**
   * Run handlers inside the AsyncLocalStorage request context (`getRequestContext()`: request
   * id, trace id, deadline). Default true; `false` saves its cost on Node 20, and on Node 22
   * without `--experimental-async-context-frame` (see the README).
   */
  requestContext?: boolean;
  /**
   * Echo the request id (the caller's `x-request-id`, or the generated one) in the
   * `x-request-id` response header. Default false: each response header costs Node a validation
   * pass, 1-7 % of a hello-world's throughput.
   */
  echoRequestId?: boolean;
  /** Prefix for the observability paths, e.g. `/_internal`. Default none. */
  basePath?: string;
  /**
   * Honour the caller's `x-trellis-deadline-ms` (its remaining budget, clamped to 2³¹−1 ms) as
   * the request's deadline, which outbound typed-client calls then inherit. Default false: any
   * client can send the header, and only a gateway that rewrites it (the Trellis gateway does)
   * makes it trustworthy. Set it to true when the service is only reachable through one.
   */
  trustDeadline?: boolean;
  /**
   * Load shedding at the door (503 `TRELLIS_SHED`): deadline, concurrency limit, event loop.
   * See the README's "Overload" section. Default off.
   */
  shed?: ShedOptions;
  /**
   * Serves the admin API and status page (`/admin/`) on the app's own listener. A `token` is
   * required here: the app's listener is not an admin listener of its own (see
   * `createAdminServer` for that).
   */
  admin?: AdminOptions;
}

/** The options both framework adapters take, validated the same way. */
export const adapterOptionsSchema = z
  .object({
    health: healthField.optional(),
    metrics: metricsField.optional(),
    tracing: tracingField.optional(),
    requestContext: z.boolean().optional(),
    echoRequestId: z.boolean().optional(),
    basePath: basePathField.optional(),
    trustDeadline: z.boolean().optional(),
    shed: shedOptionsSchema.optional(),
    admin: z
      .custom<AdminOptions>(
        (v) => typeof v === 'object' && v !== null && 'status' in v,
        'must be admin options: { status, token }',
      )
      .optional(),
  })
  .strict();
