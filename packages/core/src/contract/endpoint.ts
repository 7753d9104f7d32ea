import type { z } from 'zod';
import type { SseEvent, StreamResponse } from './stream.js';

/** HTTP methods a typed endpoint may use. */
export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** Response schemas keyed by HTTP status, e.g. `{ 200: Item, 404: NotFound }`. */
export type StatusSchemas = { readonly [status: number]: z.ZodType };

/**
 * One endpoint of a service, described with zod. `path` is a template whose `:name` segments
 * are filled from `params` (each value percent-encoded as one segment).
 */
export interface EndpointDefinition {
  readonly method: HttpMethod;
  /** Starts with `/`; `:name` marks a whole path segment taken from `params`. */
  readonly path: string;
  readonly params?: z.ZodType;
  readonly query?: z.ZodType;
  readonly body?: z.ZodType;
  readonly headers?: z.ZodType;
  /**
   * `'auto'`: each call sends a fresh `Idempotency-Key`, the same on every retry, hedge and
   * instance; a key given in the call's headers wins (see `idempotencyKey` of `createClient`).
   */
  readonly idempotencyKey?: 'auto';
  /**
   * One schema for the 2xx body (the call resolves with the parsed body), or a map of schemas
   * by status (the call resolves with `{ status, body, headers }`, a union discriminated by
   * `status`).
   */
  readonly response: z.ZodType | StatusSchemas | StreamResponse;
  /** For docs (OpenAPI `summary`). */
  readonly summary?: string;
  /** For docs (OpenAPI `description`). */
  readonly description?: string;
}

/** A set of named endpoints: each name becomes a method of the client. */
export type EndpointMap = { readonly [name: string]: EndpointDefinition };

/** Response headers as undici reports them (lower-case names). */
export type ResponseHeaders = Readonly<Record<string, string | string[] | undefined>>;

/** What a call resolves with when the endpoint declares a status map. */
export interface StatusResponse<S extends number, B> {
  readonly status: S;
  readonly body: B;
  readonly headers: ResponseHeaders;
}

type Simplify<T> = { [K in keyof T]: T[K] } & {};

/** `:name` segments of a path template, as a union of names. */
export type PathParamNames<P extends string> = P extends `${infer Head}/${infer Tail}`
  ? PathParamNames<Head> | PathParamNames<Tail>
  : P extends `:${infer Name}`
    ? Name
    : never;

type ParamsFromPath<P extends string> = string extends P
  ? Readonly<Record<string, string | number>>
  : [PathParamNames<P>] extends [never]
    ? undefined
    : { readonly [K in PathParamNames<P>]: string | number };

type ParamsInput<E extends EndpointDefinition> = E['params'] extends z.ZodType
  ? z.input<E['params']>
  : ParamsFromPath<E['path']>;

/** `{ key: T }` when `T` cannot be undefined, `{ key?: T }` when it can, `{}` for `undefined`. */
type Field<K extends string, T> = [T] extends [undefined]
  ? { readonly [P in K]?: undefined }
  : undefined extends T
    ? { readonly [P in K]?: T }
    : { readonly [P in K]: T };

type SchemaField<K extends string, S> = S extends z.ZodType
  ? Field<K, z.input<S>>
  : { readonly [P in K]?: undefined };

/** Like {@link Field}, also optional when `{}` satisfies the schema (every field optional). */
type LenientField<K extends string, T> = {} extends T ? { readonly [P in K]?: T } : Field<K, T>;

type QueryField<S> = S extends z.ZodType
  ? LenientField<'query', z.input<S>>
  : { readonly query?: undefined };

type HeadersField<S> = S extends z.ZodType
  ? LenientField<'headers', z.input<S> & Readonly<Record<string, string>>>
  : { readonly headers?: Readonly<Record<string, string>> };

/** Per-call options every endpoint method accepts. */
export interface CallOptions {
  /** Aborts this call: it rejects with `AbortedError`. */
  readonly signal?: AbortSignal;
  /** Overrides the client's `timeoutMs` for this call (still clamped by the ambient deadline). */
  readonly timeoutMs?: number;
  /**
   * Streams only: fail with `TimeoutError` when no item (or SSE comment) arrives for this long,
   * in ms. Default 60 000. The whole-call `timeoutMs` does not apply to a stream once it is open.
   */
  readonly idleTimeoutMs?: number;
  /** SSE only: resume after this event id (sent as `Last-Event-ID`). */
  readonly lastEventId?: string;
}

/** The argument of an endpoint method: params, query, body and headers, typed from the schemas. */
export type EndpointInput<E extends EndpointDefinition> = Simplify<
  Field<'params', ParamsInput<E>> &
    QueryField<E['query']> &
    SchemaField<'body', E['body']> &
    HeadersField<E['headers']> &
    CallOptions
>;

/** What an endpoint method resolves with: the parsed body, or a status union for a status map. */
export type EndpointResult<E extends EndpointDefinition> =
  E['response'] extends StreamResponse<infer F, infer S>
    ? AsyncIterable<StreamItem<F, z.output<S>>>
    : E['response'] extends z.ZodType
      ? z.output<E['response']>
      : {
          [S in keyof E['response'] & number]: E['response'][S] extends z.ZodType
            ? StatusResponse<S, z.output<E['response'][S]>>
            : never;
        }[keyof E['response'] & number];

/** One item of a stream: an SSE event, or an NDJSON value. */
export type StreamItem<F, T> = F extends 'sse' ? SseEvent<T> : T;

type Method<E extends EndpointDefinition, R> =
  {} extends EndpointInput<E> ? (input?: EndpointInput<E>) => R : (input: EndpointInput<E>) => R;

/**
 * The method a client gets for an endpoint; the argument is optional when nothing is required.
 * A streamed endpoint (`sse`/`ndjson`) returns an `AsyncIterable` of validated items at once.
 */
export type EndpointMethod<E extends EndpointDefinition> = E['response'] extends StreamResponse
  ? Method<E, EndpointResult<E>>
  : Method<E, Promise<EndpointResult<E>>>;

/**
 * Declares one endpoint, keeping its literal method and path types (so `:id` is inferred).
 * Useful when endpoints are declared apart from `createClient`.
 *
 * @example
 * ```ts
 * const getItem = endpoint({ method: 'GET', path: '/items/:id', response: Item });
 * ```
 */
export function endpoint<const E extends EndpointDefinition>(definition: E): E {
  return definition;
}

/**
 * Declares a set of endpoints with their literal types kept, for sharing between a client and
 * tests or across modules.
 *
 * @example
 * ```ts
 * export const itemsApi = defineEndpoints({
 *   getItem: { method: 'GET', path: '/items/:id', response: { 200: Item, 404: NotFound } },
 *   createItem: { method: 'POST', path: '/items', body: NewItem, response: Item },
 * });
 * ```
 */
export function defineEndpoints<const M extends EndpointMap>(endpoints: M): M {
  return endpoints;
}
