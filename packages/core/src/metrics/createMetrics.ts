import {
  collectDefaultMetrics,
  Gauge,
  type Metric,
  Registry,
  type RegistryContentType,
} from 'prom-client';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { parseOptions } from '../options.js';
import { DurationHistogram, type DurationLabelNames } from './DurationHistogram.js';

const labelName = z
  .string()
  .regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'must be a valid Prometheus label name')
  .refine((n) => !n.startsWith('__') && n !== 'le', 'is reserved');

/**
 * The OpenTelemetry bucket boundaries for `http.server.request.duration`, in seconds
 * (semantic conventions, stable HTTP metrics).
 */
export const HTTP_DURATION_BUCKETS: readonly number[] = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
];

/** The `http_route` label value shared by every request that matched no route. */
export const UNMATCHED_ROUTE = 'unmatched';

/** The status code recorded for a request whose client went away before the response ended. */
export const CLIENT_CLOSED_STATUS = 499;

const NON_COUNTER_TOTALS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/** A prom-client registry of either exposition format. */
export type AnyRegistry = Registry<RegistryContentType>;

const KNOWN_METHODS = new Set([
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'CONNECT',
  'OPTIONS',
  'TRACE',
  'PATCH',
  'QUERY',
]);

/**
 * The method as OpenTelemetry records it: one of the known methods, else `_OTHER`, so a client
 * cannot blow up label cardinality with made-up methods.
 */
export function normalizeMethod(method: string | undefined): string {
  if (method === undefined) return '_OTHER';
  if (KNOWN_METHODS.has(method)) return method;
  const upper = method.toUpperCase();
  return KNOWN_METHODS.has(upper) ? upper : '_OTHER';
}

const optionsSchema = z
  .object({
    registry: z
      .custom<AnyRegistry>((v) => v instanceof Registry, 'must be a prom-client Registry')
      .optional(),
    prefix: z
      .string()
      .regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'must be a valid Prometheus metric name prefix')
      .optional(),
    defaultMetrics: z.boolean().optional(),
    buckets: z.array(z.number().positive()).nonempty().optional(),
  })
  .strict();

export interface MetricsOptions {
  /** The registry to register on. Default: a new one owned by this object (never the global). */
  registry?: AnyRegistry;
  /** Prepended to every metric name, e.g. `shop_`. Default: none. */
  prefix?: string;
  /** Also collect prom-client's default process and Node.js metrics. Default: true. */
  defaultMetrics?: boolean;
  /** Histogram buckets in seconds. Default: {@link HTTP_DURATION_BUCKETS}. */
  buckets?: number[];
}

/** One finished server request, as recorded by the adapters and by the gateway. */
export interface ServerRequestRecord {
  /** The HTTP method; anything unknown is recorded as `_OTHER`. */
  method: string;
  /** The route template (`/items/:id`), never the raw path; undefined = `unmatched`. */
  route: string | undefined;
  /** The response status code. */
  status: number;
  durationSeconds: number;
}

/** Prometheus metrics for one app. */
export interface Metrics {
  /** The registry holding every metric (yours if you passed one, else a private one). */
  readonly registry: AnyRegistry;
  /** The `Content-Type` to serve {@link Metrics.text} with. */
  readonly contentType: string;
  /** `http_server_request_duration_seconds`: labels `http_request_method`, `http_route`, `http_response_status_code`. */
  readonly requestDuration: DurationHistogram;
  /** `http_server_active_requests`: requests being served right now. */
  readonly activeRequests: Gauge;
  /** The exposition text of every metric in the registry. */
  text(): Promise<string>;
  /** Records one finished request in `http_server_request_duration_seconds`. */
  recordServerRequest(record: ServerRequestRecord): void;
  /** Same as {@link Metrics.recordServerRequest}, without the record object (hot paths). */
  observeServerRequest(
    method: string,
    route: string | undefined,
    status: number,
    durationSeconds: number,
  ): void;
  /** Counts a request as started (`http_server_active_requests` + 1). */
  requestStarted(): void;
  /** Counts a request as ended (`http_server_active_requests` - 1). */
  requestEnded(): void;
  /**
   * Unregisters the metrics this object registered from a registry you passed, or clears the
   * private registry. Idempotent.
   */
  close(): void;
}

export interface DurationHistogramOptions {
  /** The metric name (a histogram: `_bucket`, `_sum` and `_count` series). */
  name: string;
  help: string;
  /** Three label names; the third one holds a status code. */
  labelNames: DurationLabelNames;
  /** Bucket upper bounds in seconds. Default: {@link HTTP_DURATION_BUCKETS}. */
  buckets?: readonly number[];
}

const histogramOptionsSchema = z
  .object({
    name: z.string().regex(/^[a-zA-Z_:][a-zA-Z0-9_:]*$/, 'must be a valid Prometheus metric name'),
    help: z.string().min(1),
    labelNames: z.tuple([labelName, labelName, labelName]),
    buckets: z.array(z.number().positive()).nonempty().optional(),
  })
  .strict();

function sameLabels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((name, i) => name === b[i]);
}

/** Whether `h` has exactly the bucket bounds `wanted` (in any order). */
function sameBuckets(h: DurationHistogram, wanted: readonly number[]): boolean {
  const sorted = [...wanted].sort((a, b) => a - b);
  return h.upperBounds.length === sorted.length && h.upperBounds.every((b, i) => b === sorted[i]);
}

function bucketsConflict(component: string, name: string, h: DurationHistogram): ConfigError {
  return new ConfigError(
    `${component}: the registry already has ${name} with other buckets (${h.upperBounds.join(', ')}); pass the same buckets, or another registry or name`,
    { component, issues: [{ path: 'buckets', message: `differ from ${name}'s` }] },
  );
}

/**
 * A duration histogram with three labels (e.g. route, upstream, status) on `metrics`' registry,
 * for hot paths: an observation allocates nothing and hashes no labels, unlike prom-client's
 * `Histogram`. Asking twice for the same name and labels returns the same histogram; a name taken
 * by a metric of another kind, or with other labels or buckets, is a `ConfigError`.
 *
 * @example
 * ```ts
 * import { createDurationHistogram, createMetrics } from '@trellis/core';
 *
 * const metrics = createMetrics({ defaultMetrics: false });
 * const upstream = createDurationHistogram(metrics, {
 *   name: 'shop_upstream_duration_seconds',
 *   help: 'Upstream calls by route, instance and status.',
 *   labelNames: ['route', 'upstream', 'status'],
 * });
 * upstream.observe('/orders', '10.0.0.7:8080', 200, 0.012);
 * console.log(await metrics.text());
 * ```
 */
export function createDurationHistogram(
  metrics: Metrics,
  options: DurationHistogramOptions,
): DurationHistogram {
  const o = parseOptions(histogramOptionsSchema, options, 'createDurationHistogram');
  const existing = metrics.registry.getSingleMetric(o.name) as unknown;
  const buckets = o.buckets ?? HTTP_DURATION_BUCKETS;
  if (existing instanceof DurationHistogram && sameLabels(existing.labelNames, o.labelNames)) {
    if (!sameBuckets(existing, buckets)) {
      throw bucketsConflict('createDurationHistogram', o.name, existing);
    }
    return existing;
  }
  if (existing !== undefined) {
    throw new ConfigError(
      `createDurationHistogram: the registry already has a metric named ${o.name} of another kind or with other labels`,
      {
        component: 'createDurationHistogram',
        issues: [{ path: 'name', message: `${o.name} is already registered` }],
      },
    );
  }
  const h = new DurationHistogram(o.name, o.help, buckets, o.labelNames);
  metrics.registry.registerMetric(h.asMetric());
  return h;
}

/** Per active-requests gauge, the counters of every Metrics object sharing it. */
const activeCounters = new WeakMap<Gauge, Set<{ count: number }>>();

function getOrCreate<M extends Metric>(registry: AnyRegistry, name: string, create: () => M): M {
  const existing = registry.getSingleMetric(name);
  return (existing as M | undefined) ?? create();
}

/**
 * Creates the Prometheus metrics for one app, on its own registry. Creating it twice on the same
 * registry reuses the metrics already there instead of throwing "already registered" (with other
 * `buckets` than the first time, it is a `ConfigError`).
 *
 * @example
 * ```ts
 * import { createMetrics } from '@trellis/core';
 *
 * const metrics = createMetrics({ prefix: 'shop_' });
 * metrics.recordServerRequest({ method: 'GET', route: '/items/:id', status: 200, durationSeconds: 0.012 });
 * console.log(await metrics.text());
 * ```
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const opts = parseOptions(optionsSchema, options, 'createMetrics');
  const owned = opts.registry === undefined;
  const registry: AnyRegistry = opts.registry ?? new Registry();
  const prefix = opts.prefix ?? '';
  const registered: string[] = [];

  const durationName = `${prefix}http_server_request_duration_seconds`;
  const existing = registry.getSingleMetric(durationName) as unknown;
  if (existing !== undefined && !(existing instanceof DurationHistogram)) {
    throw new ConfigError(
      `createMetrics: the registry already has a metric named ${durationName} that Trellis did not create`,
      {
        component: 'createMetrics',
        issues: [{ path: 'registry', message: `${durationName} is already registered` }],
      },
    );
  }
  const buckets = opts.buckets ?? HTTP_DURATION_BUCKETS;
  let requestDuration = existing as DurationHistogram | undefined;
  if (requestDuration !== undefined && !sameBuckets(requestDuration, buckets)) {
    throw bucketsConflict('createMetrics', durationName, requestDuration);
  }
  if (requestDuration === undefined) {
    requestDuration = new DurationHistogram(
      durationName,
      'Duration of HTTP server requests, by method, route template and status code.',
      buckets,
    );
    registry.registerMetric(requestDuration.asMetric());
    registered.push(durationName);
  }
  const duration = requestDuration;

  // Counted in a plain number and copied into the gauge at scrape time: a prom-client
  // `inc()` hashes its labels on every call, and this is on every request's path.
  const active = { count: 0 };
  const activeName = `${prefix}http_server_active_requests`;
  const activeRequests = getOrCreate(registry, activeName, () => {
    registered.push(activeName);
    const counters = new Set<{ count: number }>();
    const gauge = new Gauge({
      name: activeName,
      help: 'Number of HTTP server requests being served.',
      registers: [registry],
      collect() {
        let n = 0;
        for (const c of counters) n += c.count;
        this.set(n);
      },
    });
    activeCounters.set(gauge, counters);
    return gauge;
  }) as Gauge;
  activeCounters.get(activeRequests)?.add(active);

  if (opts.defaultMetrics !== false) {
    // collectDefaultMetrics throws when called twice on a registry: detect an earlier call.
    const probe = `${prefix}process_cpu_seconds_total`;
    if (registry.getSingleMetric(probe) === undefined) {
      const before = new Set(registry.getMetricsAsArray().map((m) => m.name));
      collectDefaultMetrics({ register: registry, prefix });
      // prom-client names three gauges `*_total`, which `promtool check metrics` rejects
      // (only counters may end in `_total`). Their by-type siblings (`nodejs_active_handles`,
      // ...) carry the same information: sum them.
      for (const name of NON_COUNTER_TOTALS) registry.removeSingleMetric(`${prefix}${name}`);
      for (const m of registry.getMetricsAsArray())
        if (!before.has(m.name)) registered.push(m.name);
    }
  }

  let closed = false;
  const observeServerRequest = (
    method: string,
    route: string | undefined,
    status: number,
    durationSeconds: number,
  ): void => {
    if (closed) return;
    duration.observe(normalizeMethod(method), route ?? UNMATCHED_ROUTE, status, durationSeconds);
  };

  return {
    registry,
    contentType: registry.contentType,
    requestDuration: duration,
    activeRequests,
    text: () => registry.metrics(),
    observeServerRequest,
    recordServerRequest: (r) =>
      observeServerRequest(r.method, r.route, r.status, r.durationSeconds),
    requestStarted: () => {
      active.count++;
    },
    requestEnded: () => {
      active.count--;
    },
    close: () => {
      if (closed) return;
      closed = true;
      activeCounters.get(activeRequests)?.delete(active);
      if (owned) registry.clear();
      else for (const name of registered) registry.removeSingleMetric(name);
    },
  };
}
