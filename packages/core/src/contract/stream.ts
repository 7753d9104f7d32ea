import type { z } from 'zod';

/** The two streaming wire formats an endpoint's `response` may declare. */
export type StreamFormat = 'sse' | 'ndjson';

/**
 * A streamed response: `sse(Event)` (Server-Sent Events, `text/event-stream`) or
 * `ndjson(Item)` (one JSON value per line, `application/x-ndjson`). Each item is validated with
 * `schema` on both sides.
 */
export interface StreamResponse<
  F extends StreamFormat = StreamFormat,
  S extends z.ZodType = z.ZodType,
> {
  readonly stream: F;
  readonly schema: S;
  /** The media type on the wire. */
  readonly contentType: F extends 'sse' ? 'text/event-stream' : 'application/x-ndjson';
}

/**
 * One Server-Sent Event. On the server a handler yields these (`data` is `z.input` of the
 * event schema); the client yields them with `data` parsed (`z.output`). `id` is what the
 * client sends back as `Last-Event-ID` when it reconnects.
 */
export interface SseEvent<T> {
  readonly data: T;
  readonly id?: string;
  readonly event?: string;
  /** Reconnection delay the server asks for, in ms. */
  readonly retry?: number;
}

/**
 * Declares a Server-Sent Events response: each event's `data` is one JSON value validated by
 * `schema`.
 *
 * @example
 * ```ts
 * import { defineEndpoints, sse } from '@trellis/core';
 * import { z } from 'zod';
 * const api = defineEndpoints({
 *   watch: { method: 'GET', path: '/orders/:id/events', response: sse(z.object({ status: z.string() })) },
 * });
 * ```
 */
export function sse<S extends z.ZodType>(schema: S): StreamResponse<'sse', S> {
  return Object.freeze({
    stream: 'sse',
    schema,
    contentType: 'text/event-stream',
  }) as StreamResponse<'sse', S>;
}

/**
 * Declares a newline-delimited JSON response: one JSON value per line, each validated by
 * `schema`.
 *
 * @example
 * ```ts
 * import { defineEndpoints, ndjson } from '@trellis/core';
 * import { z } from 'zod';
 * const api = defineEndpoints({
 *   export: { method: 'GET', path: '/items.ndjson', response: ndjson(z.object({ id: z.string() })) },
 * });
 * ```
 */
export function ndjson<S extends z.ZodType>(schema: S): StreamResponse<'ndjson', S> {
  return Object.freeze({
    stream: 'ndjson',
    schema,
    contentType: 'application/x-ndjson',
  }) as StreamResponse<'ndjson', S>;
}

/** True when an endpoint's `response` is a stream declaration. */
export function isStreamResponse(value: unknown): value is StreamResponse {
  return (
    typeof value === 'object' &&
    value !== null &&
    !('_zod' in value) &&
    ((value as StreamResponse).stream === 'sse' || (value as StreamResponse).stream === 'ndjson') &&
    typeof (value as StreamResponse).schema === 'object'
  );
}

/** True for a zod schema. */
export function isZodSchema(value: unknown): value is z.ZodType {
  return typeof value === 'object' && value !== null && '_zod' in value;
}
