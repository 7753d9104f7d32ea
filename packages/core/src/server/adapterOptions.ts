import { z } from 'zod';
import type { Health } from '../health/createHealth.js';
import type { Metrics } from '../metrics/createMetrics.js';
import type { ServerTracing } from '../tracing/createServerTracing.js';

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

/** The options both framework adapters take, validated the same way. */
export const adapterOptionsSchema = z
  .object({
    health: healthField.optional(),
    metrics: metricsField.optional(),
    tracing: tracingField.optional(),
    requestContext: z.boolean().optional(),
    echoRequestId: z.boolean().optional(),
    basePath: basePathField.optional(),
  })
  .strict();
