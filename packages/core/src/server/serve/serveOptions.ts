import { z } from 'zod';
import type { Logger } from '../../Logger.js';

/** Options of `serve` (Express and Fastify alike). */
export interface ServeOptions {
  /** Largest request body read, in bytes; a larger one is answered 413. Default 1 MiB. */
  readonly bodyLimit?: number;
  /**
   * Validate each handler answer against the contract before sending it: `true` (default),
   * `false`, or `{ sampleRate }` between 0 and 1 (the typed client's option, same meaning).
   * An answer that breaks the contract becomes a 500 problem and an error log line naming the
   * endpoint and the fields.
   */
  readonly validateResponse?: boolean | { readonly sampleRate: number };
  /** Publishes the contract's OpenAPI 3.1 document (see `toOpenApi`) at `path`. */
  readonly openapi?: {
    readonly path: string;
    readonly title?: string;
    readonly version?: string;
    readonly servers?: readonly { readonly url: string; readonly description?: string }[];
  };
  /** Where contract violations and handler failures are logged (pino-compatible). */
  readonly logger?: Logger;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

export const serveOptionsSchema = z.strictObject({
  bodyLimit: z.number().int().positive().default(DEFAULT_BODY_LIMIT),
  validateResponse: z
    .union([z.boolean(), z.strictObject({ sampleRate: z.number().min(0).max(1) })])
    .default(true),
  openapi: z
    .strictObject({
      path: z.string().startsWith('/', 'must start with "/"'),
      title: z.string().min(1).default('API'),
      version: z.string().min(1).default('0.0.0'),
      servers: z
        .array(z.strictObject({ url: z.string().min(1), description: z.string().optional() }))
        .optional(),
    })
    .optional(),
  logger: z
    .custom<Logger>(
      (v) => typeof v === 'object' && v !== null && typeof (v as Logger).error === 'function',
      'must be a pino-compatible logger',
    )
    .optional(),
});

export type ParsedServeOptions = z.output<typeof serveOptionsSchema>;
