import {
  isSpanContextValid,
  context as otelContext,
  propagation,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type { Registry, RegistryContentType } from 'prom-client';
import { z } from 'zod';
import { type Clock, systemClock } from '../Clock.js';
import { DEADLINE_HEADER, getRequestContext, type RequestContext } from '../context.js';
import type { Balancer, Resolver } from '../discovery.js';
import {
  AbortedError,
  type ConfigIssue,
  ConnectError,
  HttpError,
  RequestValidationError,
  ResponseValidationError,
  ShutdownError,
  TimeoutError,
} from '../errors.js';
import { type Logger, silentLogger } from '../Logger.js';
import { parseOptions, toIssues } from '../options.js';
import type { Policy, PolicyContext } from '../Policy.js';
import { isTrellisError } from '../TrellisError.js';
import { ClientMetrics } from './ClientMetrics.js';
import { Exchange } from './Exchange.js';
import type { EndpointDefinition, EndpointMap, EndpointMethod, HttpMethod } from './endpoint.js';
import {
  addIdempotencyKey,
  hasIdempotencyKey,
  type IdempotencyKeyMode,
  idempotencyKeySchema,
  isInProgressConflict,
  markIdempotent,
  wantsIdempotencyKey,
} from './idempotencyKey.js';
import { PathTemplate } from './PathTemplate.js';
import { serializeQuery } from './query.js';
import { parseRetryAfter } from './retryAfter.js';
import { roundRobinBalancer, ServiceTarget } from './ServiceTarget.js';
import { type Lease, StaticTarget, type Target } from './Upstream.js';

/** Options shared by both kinds of target. */
export interface ClientOptionsBase<E extends EndpointMap> {
  /** The endpoints; each name becomes a method of the client (`close` is reserved). */
  readonly endpoints: E;
  /** Wraps every call (e.g. `pipeline(retry(), circuitBreaker())`); each attempt picks again. */
  readonly policy?: Policy;
  /**
   * Budget for a whole call, every attempt and policy wait included, in ms. Default 10 000.
   * The ambient deadline (`runWithDeadline`) shortens it, never lengthens it.
   */
  readonly timeoutMs?: number;
  /** Headers sent with every request (per-call headers win). */
  readonly headers?: Readonly<Record<string, string>>;
  /**
   * Validate response bodies with the endpoint's schema: `true` (default), `false` (bodies are
   * trusted: no zod work, no transforms), or `{ sampleRate }` between 0 and 1.
   */
  readonly validateResponse?: boolean | { readonly sampleRate: number };
  /** A prom-client registry, or anything holding one (the result of `createMetrics()`). */
  readonly metrics?:
    | Registry<RegistryContentType>
    | { readonly registry: Registry<RegistryContentType> };
  /** Where CLIENT spans go; default the global OpenTelemetry tracer provider (no-op without SDK). */
  readonly tracerProvider?: TracerProvider;
  readonly logger?: Logger;
  readonly clock?: Clock;
  /** Maximum sockets per upstream origin. Default unlimited (undici's default). */
  readonly connections?: number;
  /** How long an idle keep-alive socket is kept, in ms. Default 4 000 (undici's default). */
  readonly keepAliveTimeoutMs?: number;
  /**
   * Largest response body the client buffers, in bytes. A larger one aborts the request and
   * fails with `ResponseValidationError`. Default 16 MiB.
   */
  readonly maxResponseBytes?: number;
  /**
   * `'auto'`: every POST and PATCH call sends a fresh `Idempotency-Key`, the same on each retry,
   * hedge and instance (an endpoint may set it too; a key in the call's headers wins). See
   * client/idempotencyKey.ts for the rules.
   */
  readonly idempotencyKey?: IdempotencyKeyMode;
}

/** Calls go to a fixed base URL (which may carry a path prefix). */
export interface BaseUrlClientOptions<E extends EndpointMap> extends ClientOptionsBase<E> {
  readonly baseUrl: string;
  readonly service?: undefined;
}

/** Calls go to instances of a service found by a resolver and chosen by a balancer. */
export interface ServiceClientOptions<E extends EndpointMap> extends ClientOptionsBase<E> {
  readonly baseUrl?: undefined;
  readonly service: string;
  /** E.g. `staticDiscovery(...)` or `etcdDiscovery(...)` from `@trellis/discovery`. */
  readonly resolver: Resolver;
  /** E.g. `peakEwma()` from `@trellis/discovery`. Default: round robin. */
  readonly balancer?: Balancer;
}

export type ClientOptions<E extends EndpointMap> =
  | BaseUrlClientOptions<E>
  | ServiceClientOptions<E>;

/**
 * A typed client: one method per endpoint, plus `close()`.
 *
 * @example
 * ```ts
 * const api = defineEndpoints({ getItem: { method: 'GET', path: '/items/:id', response: Item } });
 * let items: Client<typeof api>;
 * ```
 */
export type Client<E extends EndpointMap> = { readonly [K in keyof E]: EndpointMethod<E[K]> } & {
  /** Stops new calls, lets in-flight ones finish, closes every pool and the discovery watch. */
  close(): Promise<void>;
};

const DEFAULT_TIMEOUT_MS = 10_000;
const MAX_TIMER_MS = 2_147_483_647;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

const isSchema = (value: unknown): value is z.ZodType =>
  typeof value === 'object' && value !== null && '_zod' in value;
const schema = z.custom<z.ZodType>(isSchema, 'must be a zod schema');

const endpointSchema = z.strictObject({
  method: z.enum(METHODS),
  path: z.string().startsWith('/', 'must start with "/"'),
  params: schema.optional(),
  query: schema.optional(),
  body: schema.optional(),
  headers: schema.optional(),
  idempotencyKey: idempotencyKeySchema.optional(),
  response: z.union(
    [schema, z.record(z.string().regex(/^[1-5]\d\d$/, 'must be an HTTP status code'), schema)],
    { error: 'must be a zod schema, or an object of zod schemas keyed by HTTP status' },
  ),
});

const optionsSchema = z
  .strictObject({
    baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }).optional(),
    service: z.string().min(1).optional(),
    resolver: z
      .custom<Resolver>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as Resolver).resolve === 'function' &&
          typeof (v as Resolver).watch === 'function',
        'must be a Resolver (resolve, watch)',
      )
      .optional(),
    balancer: z
      .custom<Balancer>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Balancer).pick === 'function',
        'must be a Balancer (pick)',
      )
      .optional(),
    endpoints: z
      .record(z.string(), endpointSchema)
      .refine((e) => !('close' in e && Object.hasOwn(e, 'close')), '"close" is reserved'),
    policy: z
      .custom<Policy>(
        (v) => typeof v === 'object' && v !== null && typeof (v as Policy).execute === 'function',
        'must be a Policy (execute)',
      )
      .optional(),
    timeoutMs: z.number().positive().max(MAX_TIMER_MS).default(DEFAULT_TIMEOUT_MS),
    headers: z.record(z.string(), z.string()).optional(),
    validateResponse: z
      .union([z.boolean(), z.object({ sampleRate: z.number().min(0).max(1) })])
      .default(true),
    metrics: z
      .custom<Registry<RegistryContentType> | { registry: Registry<RegistryContentType> }>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          (typeof (v as Registry<RegistryContentType>).getSingleMetric === 'function' ||
            typeof (v as { registry?: Registry<RegistryContentType> }).registry?.getSingleMetric ===
              'function'),
        'must be a prom-client Registry or { registry }',
      )
      .optional(),
    tracerProvider: z
      .custom<TracerProvider>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as TracerProvider).getTracer === 'function',
        'must be an OpenTelemetry TracerProvider',
      )
      .optional(),
    logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null).optional(),
    clock: z.custom<Clock>((v) => typeof v === 'object' && v !== null).optional(),
    connections: z.number().int().positive().optional(),
    keepAliveTimeoutMs: z.number().int().positive().default(4_000),
    maxResponseBytes: z
      .number()
      .int()
      .positive()
      .default(16 * 1024 * 1024),
    idempotencyKey: idempotencyKeySchema.optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.baseUrl === undefined) === (o.service === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['baseUrl'],
        message: 'give either baseUrl or service',
      });
    }
    if (o.service !== undefined && o.resolver === undefined) {
      ctx.addIssue({ code: 'custom', path: ['resolver'], message: 'required with service' });
    }
  });

/** An endpoint prepared once: path template compiled, schemas split out. */
interface Compiled {
  readonly name: string;
  readonly method: HttpMethod;
  readonly template: PathTemplate;
  readonly spanName: string;
  readonly params: z.ZodType | undefined;
  readonly query: z.ZodType | undefined;
  readonly body: z.ZodType | undefined;
  readonly headers: z.ZodType | undefined;
  /** The 2xx schema when `response` is a single schema. */
  readonly single: z.ZodType | undefined;
  /** Schemas by status when `response` is a map. */
  readonly byStatus: ReadonlyMap<number, z.ZodType> | undefined;
  /** Send an `Idempotency-Key` with each call. */
  readonly idempotencyKey: boolean;
}

/** A request built and validated once per call, reused by every attempt. */
interface Prepared {
  readonly path: string;
  readonly body: string | undefined;
  readonly headers: Record<string, string>;
}

type CallInput = {
  readonly params?: Readonly<Record<string, unknown>>;
  readonly query?: unknown;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, unknown>>;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
};

const NO_INPUT: CallInput = {};
const SPAN_OPTIONS = { kind: SpanKind.CLIENT } as const;

/**
 * Creates a typed HTTP client from zod endpoint definitions: one method per endpoint, inputs
 * validated before any I/O, responses parsed and validated, over keep-alive undici pools.
 *
 * @example
 * ```ts
 * import { createClient } from '@trellis/core';
 * import { z } from 'zod';
 *
 * const Item = z.object({ id: z.string(), name: z.string() });
 * const items = createClient({
 *   baseUrl: 'http://items.internal:8080',
 *   endpoints: {
 *     getItem: { method: 'GET', path: '/items/:id', response: { 200: Item, 404: z.object({ error: z.string() }) } },
 *     createItem: { method: 'POST', path: '/items', body: Item.omit({ id: true }), response: Item },
 *   },
 *   timeoutMs: 2_000,
 * });
 * const res = await items.getItem({ params: { id: '42' } });
 * if (res.status === 200) console.log(res.body.name);
 * const created = await items.createItem({ body: { name: 'lamp' } });
 * await items.close();
 * ```
 */
export function createClient<const E extends EndpointMap>(options: ClientOptions<E>): Client<E> {
  const o = parseOptions(optionsSchema, options, 'createClient');
  const core = new ClientCore(o);
  const client: Record<string, unknown> = { close: () => core.close() };
  for (const name of Object.keys(o.endpoints)) {
    const compiled = compile(name, o.endpoints[name] as EndpointDefinition, o.idempotencyKey);
    client[name] = (input?: CallInput) => core.call(compiled, input ?? NO_INPUT);
  }
  return client as Client<E>;
}

function compile(
  name: string,
  def: EndpointDefinition,
  idempotencyKey: IdempotencyKeyMode | undefined,
): Compiled {
  const template = new PathTemplate(def.path, name);
  let single: z.ZodType | undefined;
  let byStatus: Map<number, z.ZodType> | undefined;
  if (isSchema(def.response)) {
    single = def.response;
  } else {
    byStatus = new Map();
    for (const [status, s] of Object.entries(def.response)) byStatus.set(Number(status), s);
  }
  return {
    name,
    method: def.method,
    template,
    spanName: `${def.method} ${template.otelTemplate}`,
    params: def.params,
    query: def.query,
    body: def.body,
    headers: def.headers,
    single,
    byStatus,
    idempotencyKey: wantsIdempotencyKey(def.method, def.idempotencyKey, idempotencyKey),
  };
}

type ParsedOptions = z.output<typeof optionsSchema>;

class ClientCore {
  readonly #target: Target;
  readonly #policy: Policy | undefined;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #headers: Readonly<Record<string, string>>;
  readonly #validateAll: boolean;
  readonly #sampleRate: number;
  #sampleCredit = 0;
  readonly #metrics: ClientMetrics | undefined;
  readonly #tracer: Tracer;
  readonly #clock: Clock;
  readonly #now: () => number;
  #closed = false;
  #closing: Promise<void> | undefined;

  constructor(o: ParsedOptions) {
    this.#clock = o.clock ?? systemClock;
    const clock = this.#clock;
    this.#now = () => clock.now();
    const settings = { connections: o.connections, keepAliveTimeoutMs: o.keepAliveTimeoutMs };
    const logger = o.logger ?? silentLogger;
    this.#target =
      o.baseUrl !== undefined
        ? new StaticTarget(o.baseUrl, settings)
        : new ServiceTarget(
            o.service as string,
            o.resolver as Resolver,
            o.balancer ?? roundRobinBalancer(),
            settings,
            logger,
          );
    this.#policy = o.policy;
    this.#timeoutMs = o.timeoutMs;
    this.#maxResponseBytes = o.maxResponseBytes;
    this.#headers = { accept: 'application/json', ...lowerCaseKeys(o.headers) };
    const v = o.validateResponse;
    this.#validateAll = v === true || (typeof v === 'object' && v.sampleRate >= 1);
    this.#sampleRate = typeof v === 'object' ? v.sampleRate : v ? 1 : 0;
    const m = o.metrics;
    if (m !== undefined) {
      this.#metrics = new ClientMetrics('getSingleMetric' in m ? m : m.registry);
    }
    this.#tracer = (o.tracerProvider ?? trace).getTracer('@trellis/core');
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#closing ??= this.#target.close();
    return this.#closing;
  }

  call(ep: Compiled, input: CallInput): Promise<unknown> {
    if (this.#closed) {
      return Promise.reject(new ShutdownError('createClient: the client is closed'));
    }
    const ctx = getRequestContext();
    let prepared: Prepared;
    try {
      prepared = this.#prepare(ep, input, ctx);
    } catch (err) {
      return Promise.reject(err);
    }
    let budget = input.timeoutMs ?? this.#timeoutMs;
    const now = this.#clock.now();
    if (ctx?.deadline !== undefined) {
      // Same rule as remainingMs(): the context's own clock when it has one.
      const ambient = ctx.deadline - (ctx.clock ?? this.#clock).now();
      if (ambient < budget) budget = ambient;
    }
    const deadlineAt = now + budget;
    const signal = input.signal;
    const policy = this.#policy;
    if (policy === undefined) {
      return this.#attempt(ep, prepared, signal, signal, 1, deadlineAt, budget, undefined);
    }
    return this.#callWithPolicy(policy, ep, prepared, signal, deadlineAt, budget);
  }

  async #callWithPolicy(
    policy: Policy,
    ep: Compiled,
    prepared: Prepared,
    callerSignal: AbortSignal | undefined,
    deadlineAt: number,
    budget: number,
  ): Promise<unknown> {
    // One controller for the whole call, so the deadline or the caller also interrupts the
    // policy's own waits (backoff, bulkhead queue).
    const controller = new AbortController();
    const onCallerAbort = () => controller.abort(callerSignal?.reason);
    if (callerSignal?.aborted) onCallerAbort();
    else callerSignal?.addEventListener('abort', onCallerAbort, { once: true });
    let timedOut = false;
    const timer = this.#clock.setTimeout(
      () => {
        timedOut = true;
        controller.abort(timeoutError(this.#target.name, budget));
      },
      Math.max(0, deadlineAt - this.#clock.now()),
    );
    const tried = this.#target instanceof ServiceTarget ? new Set<string>() : undefined;
    try {
      const attempt = (ctx: PolicyContext) =>
        this.#attempt(
          ep,
          prepared,
          ctx.signal,
          callerSignal,
          ctx.attempt,
          this.#attemptDeadline(deadlineAt),
          budget,
          tried,
        );
      // A call with an Idempotency-Key may run in parallel: a hedge policy may hedge it.
      if (hasIdempotencyKey(prepared.headers)) markIdempotent(attempt);
      return await policy.execute(attempt, { signal: controller.signal });
    } catch (err) {
      if (timedOut && !(err instanceof TimeoutError)) {
        throw timeoutError(this.#target.name, budget, err);
      }
      if (callerSignal?.aborted && !(err instanceof AbortedError)) {
        throw new AbortedError('createClient: the call was aborted', {
          cause: callerSignal.reason,
        });
      }
      throw err;
    } finally {
      this.#clock.clearTimeout(timer);
      callerSignal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /**
   * A policy may run each attempt under a shorter ambient deadline (a per-attempt `timeout()`):
   * the attempt honours it, and sends it downstream.
   */
  #attemptDeadline(deadlineAt: number): number {
    const ctx = getRequestContext();
    if (ctx?.deadline === undefined) return deadlineAt;
    const clock = this.#clock;
    const at = clock.now() + (ctx.deadline - (ctx.clock ?? clock).now());
    return Math.min(at, deadlineAt);
  }

  #prepare(ep: Compiled, input: CallInput, ctx: RequestContext | undefined): Prepared {
    let params = input.params;
    let query = input.query;
    let body = input.body;
    let headers = input.headers;
    let issues: ConfigIssue[] | undefined;
    if (ep.params !== undefined) {
      const r = ep.params.safeParse(params);
      if (r.success) params = r.data as Record<string, unknown>;
      else issues = addIssues(issues, 'params', r.error);
    }
    if (ep.query !== undefined) {
      const r = ep.query.safeParse(query);
      if (r.success) query = r.data;
      else issues = addIssues(issues, 'query', r.error);
    }
    if (ep.body !== undefined) {
      const r = ep.body.safeParse(body);
      if (r.success) body = r.data;
      else issues = addIssues(issues, 'body', r.error);
    }
    if (ep.headers !== undefined) {
      const r = ep.headers.safeParse(headers ?? {});
      if (r.success) headers = { ...headers, ...(r.data as Record<string, unknown>) };
      else issues = addIssues(issues, 'headers', r.error);
    }
    if (issues !== undefined) {
      const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
      throw new RequestValidationError(`${ep.name}: invalid request: ${detail}`, { issues });
    }
    const path = ep.template.build(params) + serializeQuery(query);
    const out: Record<string, string> = { ...this.#headers };
    if (headers !== undefined) {
      for (const key in headers) {
        const value = headers[key];
        if (value !== undefined && value !== null) out[key.toLowerCase()] = String(value);
      }
    }
    let text: string | undefined;
    if (body !== undefined) {
      text = JSON.stringify(body);
      out['content-type'] ??= 'application/json';
    }
    if (ep.idempotencyKey) addIdempotencyKey(out);
    if (out['x-request-id'] === undefined) {
      const requestId = ctx?.requestId;
      if (requestId !== undefined) out['x-request-id'] = requestId;
    }
    return { path, body: text, headers: out };
  }

  async #attempt(
    ep: Compiled,
    prepared: Prepared,
    signal: AbortSignal | undefined,
    callerSignal: AbortSignal | undefined,
    attempt: number,
    deadlineAt: number,
    budget: number,
    tried: Set<string> | undefined,
  ): Promise<unknown> {
    if (signal?.aborted) throw abortError(signal, callerSignal);
    const clock = this.#clock;
    const startedAt = clock.now();
    const left = deadlineAt - startedAt;
    if (left <= 0) throw timeoutError(this.#target.name, budget);
    if (this.#closed) throw new ShutdownError('createClient: the client is closed');

    const leased = this.#target.acquire(tried);
    const lease: Lease = leased instanceof Promise ? await leased : leased;
    const upstream = lease.upstream;
    tried?.add(upstream.id);
    if (signal?.aborted) {
      // Aborted while discovery was resolving: nothing was sent, the instance is not at fault.
      lease.pick?.done({ ok: true, durationMs: 0 });
      throw abortError(signal, callerSignal);
    }

    const headers = prepared.headers;
    headers[DEADLINE_HEADER] = String(Math.floor(left));
    const active = otelContext.active();
    const span = this.#tracer.startSpan(ep.spanName, SPAN_OPTIONS, active);
    const recording = span.isRecording();
    if (recording) {
      span.setAttributes({
        'http.request.method': ep.method,
        'server.address': upstream.address,
        'server.port': upstream.port,
        'url.full': upstream.origin + upstream.prefix + prepared.path,
        'url.template': ep.template.otelTemplate,
      });
      if (attempt > 1) span.setAttribute('http.request.resend_count', attempt - 1);
    }
    // Without an SDK and without an incoming trace there is nothing to propagate: skip the
    // context copy. A valid non-recording span (sampled out) still propagates its flags.
    if (recording || isSpanContextValid(span.spanContext())) {
      propagation.inject(trace.setSpan(active, span), headers);
    }

    // Headers time matters only to a balancer: skip the clock read otherwise.
    const exchange = new Exchange(
      lease.pick === undefined ? undefined : this.#now,
      this.#maxResponseBytes,
    );
    const timer = clock.setTimeout(
      () => exchange.abort(timeoutError(this.#target.name, budget)),
      Math.min(left, MAX_TIMER_MS),
    );
    if (signal !== undefined) {
      exchange.signal = signal;
      exchange.callerSignal = callerSignal;
      exchange.onSignal = onSignal;
      signal.addEventListener('abort', exchange);
    }

    let status = 0;
    let errorType: string | undefined;
    try {
      upstream.pool.dispatch(
        {
          origin: upstream.origin,
          path: upstream.prefix + prepared.path,
          method: ep.method,
          headers,
          body: prepared.body,
        },
        exchange,
      );
      try {
        await exchange.promise;
      } catch (err) {
        if (exchange.tooLarge) throw tooLargeError(ep, exchange, this.#maxResponseBytes);
        throw toTransportError(err, this.#target.name, upstream.origin, ep.name);
      }
      status = exchange.statusCode;
      const result = this.#interpret(ep, exchange);
      if (status >= 400) errorType = String(status);
      return result;
    } catch (err) {
      errorType ??= errorTypeOf(err, status);
      if (recording) span.recordException(err as Error);
      throw err;
    } finally {
      clock.clearTimeout(timer);
      signal?.removeEventListener('abort', exchange);
      const endedAt = lease.pick !== undefined || this.#metrics !== undefined ? clock.now() : 0;
      if (lease.pick !== undefined) {
        const answeredAt = exchange.headersAt === 0 ? endedAt : exchange.headersAt;
        lease.pick.done({
          ok: errorType === undefined || (status !== 0 && status < 500),
          durationMs: answeredAt - startedAt,
        });
      }
      if (recording) endSpan(span, status, errorType);
      else span.end();
      this.#metrics?.observe(
        ep.method,
        upstream.address,
        upstream.port,
        status,
        errorType,
        (endedAt - startedAt) / 1000,
      );
    }
  }

  /** Turns a finished exchange into the call's result, or the right error. */
  #interpret(ep: Compiled, exchange: Exchange): unknown {
    const status = exchange.statusCode;
    const ok = status >= 200 && status < 300;
    if (ep.single !== undefined) {
      if (!ok) throw httpError(ep, exchange);
      return this.#validate(ep, ep.single, status, exchange);
    }
    const s = (ep.byStatus as ReadonlyMap<number, z.ZodType>).get(status);
    if (s === undefined) {
      if (!ok) throw httpError(ep, exchange);
      const message = `status ${status} is not declared in the endpoint's responses`;
      throw new ResponseValidationError(`${ep.name}: invalid response: ${message}`, {
        status,
        issues: [{ path: '(status)', message }],
        body: readBody(exchange, ep.method),
      });
    }
    return {
      status,
      body: this.#validate(ep, s, status, exchange),
      headers: exchange.headers,
    };
  }

  #validate(ep: Compiled, schema: z.ZodType, status: number, exchange: Exchange): unknown {
    let body: unknown;
    try {
      body = parseBody(exchange, ep.method);
    } catch (err) {
      const message = `body is not valid JSON: ${(err as Error).message}`;
      throw new ResponseValidationError(`${ep.name}: invalid response: ${message}`, {
        status,
        issues: [{ path: '(root)', message }],
        body: exchange.body()?.toString('utf8'),
        cause: err,
      });
    }
    if (!this.#shouldValidate()) return body;
    const r = schema.safeParse(body);
    if (r.success) return r.data;
    const issues = toIssues(r.error);
    const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    throw new ResponseValidationError(`${ep.name}: invalid response (${status}): ${detail}`, {
      status,
      issues,
      body,
      cause: r.error,
    });
  }

  /** Deterministic sampling: exactly `sampleRate` of responses, spread evenly, no RNG. */
  #shouldValidate(): boolean {
    if (this.#validateAll) return true;
    if (this.#sampleRate === 0) return false;
    this.#sampleCredit += this.#sampleRate;
    if (this.#sampleCredit < 1) return false;
    this.#sampleCredit -= 1;
    return true;
  }
}

function onSignal(exchange: Exchange): void {
  exchange.abort(abortError(exchange.signal as AbortSignal, exchange.callerSignal));
}

/**
 * The error for an aborted attempt signal: the policy's own reason when it aborted with a
 * Trellis error (a policy timeout), otherwise `AbortedError` carrying the signal's reason.
 */
function abortError(signal: AbortSignal, callerSignal: AbortSignal | undefined): Error {
  const reason: unknown = signal.reason;
  if (callerSignal?.aborted !== true && isTrellisError(reason)) return reason;
  return new AbortedError('createClient: the call was aborted', { cause: reason });
}

function timeoutError(target: string, budget: number, cause?: unknown) {
  const ms = Math.max(0, Math.round(budget));
  return new TimeoutError(`createClient: call to ${target} did not finish within ${ms} ms`, {
    timeoutMs: ms,
    cause,
  });
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

/** Maps undici and socket errors to Trellis errors; Trellis errors pass through. */
function toTransportError(err: unknown, target: string, origin: string, name: string): Error {
  if (isTrellisError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_INVALID_ARG') {
    // undici refused the request itself (e.g. a header value with CR/LF): the caller's input.
    const message = (err as Error).message;
    return new RequestValidationError(`${name}: invalid request: ${message}`, {
      issues: [{ path: 'headers', message }],
      cause: err,
    });
  }
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new TimeoutError(`createClient: ${origin} stopped responding (${code})`, {
      timeoutMs: 0,
      cause: err,
    });
  }
  if (
    typeof code === 'string' &&
    (CONNECT_CODES.has(code) || code.startsWith('HPE_') || code.startsWith('ERR_SSL'))
  ) {
    return new ConnectError(
      `createClient: connection to ${origin} (${target}) failed: ${(err as Error).message}`,
      { target: origin, cause: err },
    );
  }
  return new ConnectError(
    `createClient: request to ${origin} (${target}) failed: ${String((err as Error)?.message ?? err)}`,
    { target: origin, cause: err },
  );
}

function tooLargeError(ep: Compiled, exchange: Exchange, max: number) {
  const message = `body is larger than maxResponseBytes (${max})`;
  return new ResponseValidationError(`${ep.name}: invalid response: ${message}`, {
    status: exchange.statusCode,
    issues: [{ path: '(body)', message }],
    body: undefined,
  });
}

function errorTypeOf(err: unknown, status: number): string {
  if (status >= 400) return String(status);
  if (err instanceof Error && err.name !== '') return err.name;
  return '_OTHER';
}

function endSpan(span: Span, status: number, errorType: string | undefined): void {
  if (status !== 0) span.setAttribute('http.response.status_code', status);
  if (errorType !== undefined) {
    span.setAttribute('error.type', errorType);
    span.setStatus({ code: SpanStatusCode.ERROR });
  }
  span.end();
}

function httpError(ep: Compiled, exchange: Exchange) {
  const status = exchange.statusCode;
  const body = readBody(exchange, ep.method);
  return new HttpError(`${ep.name}: upstream answered ${status}`, {
    status,
    headers: exchange.headers,
    body,
    retryAfterMs: parseRetryAfter(exchange.headers['retry-after']),
    retryable:
      status === 502 ||
      status === 503 ||
      status === 504 ||
      isInProgressConflict(status, exchange.headers, body),
  });
}

/**
 * Parses a body: JSON when `content-type` says `json` (throws on malformed JSON), text for any
 * other declared type, and JSON-if-it-parses-else-text when there is no `content-type`.
 */
function parseBody(exchange: Exchange, method: HttpMethod): unknown {
  if (method === 'HEAD') return undefined;
  const buf = exchange.body();
  if (buf === undefined || buf.length === 0) return undefined;
  const text = buf.toString('utf8');
  const type = exchange.headers['content-type'];
  if (type === undefined) return parseOrText(text);
  return JSON_TYPE.test(type) ? JSON.parse(text) : text;
}

/** Like {@link parseBody}, for error bodies: falls back to the text when the JSON is malformed. */
function readBody(exchange: Exchange, method: HttpMethod): unknown {
  if (method === 'HEAD') return undefined;
  const buf = exchange.body();
  if (buf === undefined || buf.length === 0) return undefined;
  const text = buf.toString('utf8');
  const type = exchange.headers['content-type'];
  return type === undefined || JSON_TYPE.test(type) ? parseOrText(text) : text;
}

const JSON_TYPE = /[/+]json\b/i;

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

function addIssues(
  issues: ConfigIssue[] | undefined,
  prefix: string,
  error: z.ZodError,
): ConfigIssue[] {
  const out = issues ?? [];
  for (const issue of toIssues(error)) {
    out.push({
      path: issue.path === '(root)' ? prefix : `${prefix}.${issue.path}`,
      message: issue.message,
    });
  }
  return out;
}

function lowerCaseKeys(
  headers: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers !== undefined)
    for (const key in headers) out[key.toLowerCase()] = headers[key] as string;
  return out;
}
