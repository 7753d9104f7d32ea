import type { IncomingHttpHeaders } from 'node:http';
import type { z } from 'zod';
import type { EndpointDefinition, EndpointMap, PathParamNames } from '../../contract/endpoint.js';
import type { SseEvent, StreamResponse } from '../../contract/stream.js';

/** The 2xx statuses a handler of a single-schema endpoint may answer with. */
export type SuccessStatus = 200 | 201 | 202 | 203 | 204 | 205 | 206 | 207 | 208 | 226;

/** Response headers a handler may add. */
export type HandlerHeaders = Readonly<Record<string, string | number | readonly string[]>>;

type Out<S, Otherwise> = S extends z.ZodType ? z.output<S> : Otherwise;

type PathParams<P extends string> = string extends P
  ? Readonly<Record<string, string>>
  : { readonly [K in PathParamNames<P>]: string };

/** What a handler receives: each part parsed by the endpoint's schema (`z.output`). */
export interface HandlerInput<E extends EndpointDefinition, Req> {
  readonly params: Out<E['params'], PathParams<E['path']>>;
  readonly query: Out<E['query'], undefined>;
  readonly body: Out<E['body'], undefined>;
  readonly headers: Out<E['headers'], IncomingHttpHeaders>;
  /** The framework's request (Express `req`, Fastify `request`). */
  readonly request: Req;
  /** Aborted when the client goes away before the answer is complete. */
  readonly signal: AbortSignal;
}

/** One item a streaming handler yields: an SSE event (`data` in wire shape) or an NDJSON value. */
export type StreamItemInput<R> =
  R extends StreamResponse<infer F, infer S>
    ? F extends 'sse'
      ? SseEvent<z.input<S>>
      : z.input<S>
    : never;

/**
 * What a handler returns: `{ status, body, headers? }` with `body` in wire shape (`z.input` of
 * the response schema). A single schema allows any 2xx status, a status map exactly its
 * statuses, a stream (`sse`/`ndjson`) status 200 with an async iterable body, or 204 with none
 * (for SSE: do not reconnect).
 */
export type HandlerResult<E extends EndpointDefinition> = E['response'] extends StreamResponse
  ?
      | {
          readonly status: 200;
          readonly body: AsyncIterable<StreamItemInput<E['response']>>;
          readonly headers?: HandlerHeaders;
        }
      // Nothing to stream: for SSE, 204 also tells the client not to reconnect.
      | { readonly status: 204; readonly body?: undefined; readonly headers?: HandlerHeaders }
  : E['response'] extends z.ZodType
    ? {
        readonly status: SuccessStatus;
        readonly body: z.input<E['response']>;
        readonly headers?: HandlerHeaders;
      }
    : {
        [S in keyof E['response'] & number]: E['response'][S] extends z.ZodType
          ? {
              readonly status: S;
              readonly body: z.input<E['response'][S]>;
              readonly headers?: HandlerHeaders;
            }
          : never;
      }[keyof E['response'] & number];

/** The handler of one endpoint. */
export type Handler<E extends EndpointDefinition, Req> = (
  input: HandlerInput<E, Req>,
) => HandlerResult<E> | Promise<HandlerResult<E>>;

/** One handler per endpoint, no more, no less. */
export type Handlers<M extends EndpointMap, Req> = { readonly [K in keyof M]: Handler<M[K], Req> };
