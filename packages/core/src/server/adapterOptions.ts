import { z } from 'zod';
import type { Health } from '../health/createHealth.js';
import type { Metrics } from '../metrics/createMetrics.js';
import type { ServerTracing } from '../tracing/createServerTracing.js';

/** The options both framework adapters take, validated the same way. */
export const adapterOptionsSchema = z
  .object({
    health: z
      .custom<Health>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Health).ready === 'function',
        'must be a Health from createHealth()',
      )
      .optional(),
    metrics: z
      .custom<Metrics>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as Metrics).observeServerRequest === 'function',
        'must be Metrics from createMetrics()',
      )
      .optional(),
    tracing: z
      .union([
        z.boolean(),
        z.custom<ServerTracing>(
          (v) =>
            typeof v === 'object' && v !== null && typeof (v as ServerTracing).start === 'function',
          'must be true, false or a ServerTracing from createServerTracing()',
        ),
      ])
      .optional(),
    requestContext: z.boolean().optional(),
    basePath: z
      .string()
      .regex(/^(\/[^/?#]+)+$/, 'must start with "/" and not end with "/"')
      .optional(),
  })
  .strict();
