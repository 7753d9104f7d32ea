/**
 * The options of `createClient`, declared once: the zod schema below is the declaration, and the
 * public TypeScript types are derived from it (`clientOptions.test.ts` checks that they agree).
 */
import type { TracerProvider } from '@opentelemetry/api';
import type { Registry, RegistryContentType } from 'prom-client';
import { z } from 'zod';
import type { Clock } from '../Clock.js';
import { isStreamResponse } from '../contract/stream.js';
import type { Balancer, Resolver } from '../discovery.js';
import type { Logger } from '../Logger.js';
import type { Policy } from '../Policy.js';
import { statusField } from '../status/statusField.js';
import { durationMs } from '../time/duration.js';
import { ClientThrottle } from './clientThrottle.js';
import type { EndpointMap } from './endpoint.js';
import { idempotencyKeySchema } from './idempotencyKey.js';
import { badValue, TOKEN } from './prepareRequest.js';

/** Budget of a whole call when neither the client nor the call says otherwise. */
export const DEFAULT_TIMEOUT_MS = 10_000;
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

export const isSchema = (value: unknown): value is z.ZodType =>
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
  summary: z.string().optional(),
  description: z.string().optional(),
  response: z.union(
    [
      schema,
      z.custom(isStreamResponse),
      z.record(z.string().regex(/^[1-5]\d\d$/, 'must be an HTTP status code'), schema),
    ],
    {
      error:
        'must be a zod schema, an object of zod schemas keyed by HTTP status, sse() or ndjson()',
    },
  ),
});

type MetricsTarget =
  | Registry<RegistryContentType>
  | { readonly registry: Registry<RegistryContentType> };

/** Fields shared by both kinds of target (everything but where the calls go). */
const commonShape = {
  /** The endpoints; each name becomes a method of the client (`close` is reserved). */
  endpoints: z
    .record(z.string(), endpointSchema)
    .refine((e) => !('close' in e && Object.hasOwn(e, 'close')), '"close" is reserved'),
  /** Wraps every call (e.g. `pipeline(retry(), circuitBreaker())`); each attempt picks again. */
  policy: z
    .custom<Policy>(
      (v) => typeof v === 'object' && v !== null && typeof (v as Policy).execute === 'function',
      'must be a Policy (execute)',
    )
    .optional(),
  /** Client-side throttling (SRE book), innermost: every attempt goes through it. */
  throttle: z.instanceof(ClientThrottle, { message: 'must be a clientThrottle()' }).optional(),
  /**
   * Budget for a whole call, every attempt and policy wait included, in ms. Default 10 000, at
   * most 2³¹−1 (the longest delay a timer holds). The ambient deadline (`runWithDeadline`, or
   * a trusted `x-trellis-deadline-ms`) shortens it, never lengthens it.
   */
  timeoutMs: durationMs({ positive: true }).default(DEFAULT_TIMEOUT_MS),
  /** Headers sent with every request (per-call headers win). */
  headers: z
    .record(
      z.string().regex(TOKEN, 'is not a valid header name (RFC 9110 token)'),
      z
        .string()
        .refine(
          (v) => !badValue(v),
          'must not contain control characters (CR, LF, NUL, ...) or characters above U+00FF',
        ),
    )
    .optional(),
  /**
   * Validate response bodies with the endpoint's schema: `true` (default), `false` (bodies are
   * trusted: no zod work, no transforms), or `{ sampleRate }` between 0 and 1.
   */
  validateResponse: z
    .union([z.boolean(), z.object({ sampleRate: z.number().min(0).max(1) })])
    .default(true),
  /** A prom-client registry, or anything holding one (the result of `createMetrics()`). */
  metrics: z
    .custom<MetricsTarget>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        (typeof (v as Registry<RegistryContentType>).getSingleMetric === 'function' ||
          typeof (v as { registry?: Registry<RegistryContentType> }).registry?.getSingleMetric ===
            'function'),
      'must be a prom-client Registry or { registry }',
    )
    .optional(),
  /**
   * With `metrics`: instrument the `policy` too (breaker state and calls, retries and give-ups,
   * bulkhead, timeouts: `@trellis/resilience` policies), labelled with the client's `name`.
   * Default true; false leaves the policy alone (e.g. you called `instrument()` yourself).
   */
  instrumentPolicy: z.boolean().default(true),
  /**
   * `'auto'`: every POST and PATCH call sends a fresh `Idempotency-Key`, the same on each retry,
   * hedge and instance (an endpoint may set it too; a key in the call's headers wins). See
   * client/idempotencyKey.ts for the rules.
   */
  idempotencyKey: idempotencyKeySchema.optional(),
  /** The client's name in metrics and the status registry. Default the service, or the baseUrl's host. */
  name: z.string().min(1).max(200).optional(),
  /** Registers the client (kind `client`: its target and endpoints) with this status registry. */
  status: statusField.optional(),
  /** Where CLIENT spans go; default the global OpenTelemetry tracer provider (no-op without SDK). */
  tracerProvider: z
    .custom<TracerProvider>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as TracerProvider).getTracer === 'function',
      'must be an OpenTelemetry TracerProvider',
    )
    .optional(),
  /** A pino-compatible logger. */
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null).optional(),
  /** Time source and timers (tests pass `createTestClock()`). */
  clock: z.custom<Clock>((v) => typeof v === 'object' && v !== null).optional(),
  /** Maximum sockets per upstream origin. Default unlimited (undici's default). */
  connections: z.number().int().positive().optional(),
  /** How long an idle keep-alive socket is kept, in ms. Default 4 000 (undici's default). */
  keepAliveTimeoutMs: durationMs({ positive: true }).int().default(4_000),
  /**
   * Largest response body the client buffers, in bytes. A larger one aborts the request and
   * fails with `ResponseValidationError`. Default 16 MiB.
   */
  maxResponseBytes: z
    .number()
    .int()
    .positive()
    .default(16 * 1024 * 1024),
};

/** Calls go to a fixed base URL (which may carry a path prefix). */
const baseUrlShape = {
  baseUrl: z.url({ protocol: /^https?$/, error: 'must be an http(s) URL' }),
};

/** Calls go to instances of a service found by a resolver and chosen by a balancer. */
const serviceShape = {
  /** The service name the resolver knows. */
  service: z.string().min(1),
  /** E.g. `staticDiscovery(...)` or `etcdDiscovery(...)` from `@trellis/discovery`. */
  resolver: z.custom<Resolver>(
    (v) =>
      typeof v === 'object' &&
      v !== null &&
      typeof (v as Resolver).resolve === 'function' &&
      typeof (v as Resolver).watch === 'function',
    'must be a Resolver (resolve, watch)',
  ),
  /** E.g. `peakEwma()` from `@trellis/discovery`. Default: round robin. */
  balancer: z
    .custom<Balancer>(
      (v) => typeof v === 'object' && v !== null && typeof (v as Balancer).pick === 'function',
      'must be a Balancer (pick)',
    )
    .optional(),
};

/** The runtime schema: one object (so an unknown key is named), then the either/or rule. */
export const clientOptionsSchema = z
  .strictObject({
    ...commonShape,
    baseUrl: baseUrlShape.baseUrl.optional(),
    service: serviceShape.service.optional(),
    resolver: serviceShape.resolver.optional(),
    balancer: serviceShape.balancer,
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

/** The options after parsing (defaults filled in). */
export type ParsedClientOptions = z.output<typeof clientOptionsSchema>;

type InputOf<S extends z.core.$ZodLooseShape> = Readonly<z.input<z.ZodObject<S>>>;

/** Options shared by both kinds of target (derived from the schema). */
export type ClientOptionsBase<E extends EndpointMap> = Omit<
  InputOf<typeof commonShape>,
  'endpoints'
> & {
  /** The endpoints; each name becomes a method of the client (`close` is reserved). */
  readonly endpoints: E;
};

/** Calls go to a fixed base URL (which may carry a path prefix). */
export type BaseUrlClientOptions<E extends EndpointMap> = ClientOptionsBase<E> &
  InputOf<typeof baseUrlShape> & { readonly service?: undefined };

/** Calls go to instances of a service found by a resolver and chosen by a balancer. */
export type ServiceClientOptions<E extends EndpointMap> = ClientOptionsBase<E> &
  InputOf<typeof serviceShape> & { readonly baseUrl?: undefined };

/** The options of `createClient`: a base URL, or a service with its resolver. */
export type ClientOptions<E extends EndpointMap> =
  | BaseUrlClientOptions<E>
  | ServiceClientOptions<E>;
