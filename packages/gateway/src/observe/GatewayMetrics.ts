/**
 * What the gateway records per request: the server histogram (core's `recordServerRequest`),
 * the upstream attempt histogram, error answers by route, code and status, and retries, all on
 * one registry.
 */
import { createDurationHistogram, type DurationHistogram, type Metrics } from '@trellis/core';
import { Counter } from 'prom-client';

export class GatewayMetrics {
  readonly metrics: Metrics;
  readonly #upstream: DurationHistogram;
  readonly #errors: Counter<'route' | 'code' | 'status'>;
  readonly #retries: Counter<'route'>;

  constructor(metrics: Metrics) {
    this.metrics = metrics;
    this.#upstream = createDurationHistogram(metrics, {
      name: 'trellis_gateway_upstream_request_duration_seconds',
      help: 'Duration of gateway requests to upstream instances (to the end of the response), by route, upstream instance and status (0 = no response).',
      labelNames: ['route', 'upstream', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    });
    this.#errors = counter(
      metrics,
      'trellis_gateway_errors_total',
      'Error answers the gateway generated itself (no route, bad path, 401, 403, 405, 413, 429, 502, 503 shed or circuit open, 504, ...), by route, error code and status.',
      ['route', 'code', 'status'] as const,
    );
    this.#retries = counter(
      metrics,
      'trellis_gateway_retries_total',
      'Upstream attempts that were retries, by route.',
      ['route'] as const,
    );
  }

  request(method: string, route: string | undefined, status: number, seconds: number): void {
    this.metrics.recordServerRequest({ method, route, status, durationSeconds: seconds });
  }

  error(route: string | undefined, code: string, status: number): void {
    this.#errors.inc({ route: route ?? 'unmatched', code, status: String(status) });
  }

  retry(route: string): void {
    this.#retries.inc({ route });
  }

  upstream(route: string, upstream: string, status: number, seconds: number): void {
    this.#upstream.observe(route, upstream, status, seconds);
  }
}

function counter<L extends string>(
  metrics: Metrics,
  name: string,
  help: string,
  labelNames: readonly L[],
): Counter<L> {
  const existing = metrics.registry.getSingleMetric(name);
  if (existing !== undefined) return existing as Counter<L>;
  return new Counter({ name, help, labelNames, registers: [metrics.registry] });
}
