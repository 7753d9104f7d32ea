/**
 * Where the standalone gateway (the `trellis-gateway` CLI) listens and how it shuts down. Part
 * of the top-level config; ignored by `createGateway` (embedding code calls `listen` itself).
 */
import { z } from 'zod';

export const listenSchema = z
  .object({
    port: z
      .number()
      .int()
      .min(0)
      .max(65_535)
      .default(8080)
      .describe('Port of the CLI gateway (`--port` overrides). 0 picks a free port.'),
    host: z
      .string()
      .min(1)
      .default('0.0.0.0')
      .describe('Interface of the CLI gateway (`--host` overrides).'),
    drainDelayMs: z
      .number()
      .int()
      .min(0)
      .default(5_000)
      .describe(
        'On SIGTERM/SIGINT: how long readiness fails before the gateway stops accepting (lets load balancers notice).',
      ),
    closeTimeoutMs: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('On shutdown: how long in-flight requests may take before they are cut.'),
  })
  .strict()
  .prefault({})
  .describe('Standalone (CLI) listener and shutdown timing.');

export type ListenConfig = z.output<typeof listenSchema>;
