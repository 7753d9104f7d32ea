import { Histogram, type Registry, type RegistryContentType } from 'prom-client';

/** Name of the client request histogram (OpenTelemetry `http.client.request.duration`). */
export const CLIENT_DURATION_METRIC = 'http_client_request_duration_seconds';

/** OpenTelemetry's advised bucket boundaries for HTTP durations, in seconds. */
export const HTTP_DURATION_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10,
] as const;

const LABELS = [
  'http_request_method',
  'server_address',
  'server_port',
  'http_response_status_code',
  'error_type',
] as const;
type Label = (typeof LABELS)[number];

type Child = ReturnType<Histogram<Label>['labels']>;

/**
 * Records `http_client_request_duration_seconds` into a prom-client registry. Reuses a
 * histogram already registered under that name (a second client, or a hot reload), and caches
 * the labelled child per label combination so an observation costs one map lookup.
 */
export class ClientMetrics {
  readonly #histogram: Histogram<Label>;
  readonly #children = new Map<string, Child>();

  constructor(registry: Registry<RegistryContentType>) {
    const existing = registry.getSingleMetric(CLIENT_DURATION_METRIC);
    if (existing instanceof Histogram) {
      this.#histogram = existing as Histogram<Label>;
    } else {
      this.#histogram = new Histogram<Label>({
        name: CLIENT_DURATION_METRIC,
        help: 'Duration of outbound HTTP requests made by Trellis typed clients, per attempt (streams: until the stream opened).',
        labelNames: LABELS,
        buckets: [...HTTP_DURATION_BUCKETS],
        // prom-client types `registers` as the default content type only; any registry works.
        registers: [registry as Registry],
      });
    }
  }

  observe(
    method: string,
    address: string,
    port: number,
    status: number,
    errorType: string | undefined,
    seconds: number,
  ): void {
    const key = `${method} ${address} ${port} ${status} ${errorType ?? ''}`;
    let child = this.#children.get(key);
    if (child === undefined) {
      // OpenTelemetry leaves out an attribute that does not apply (no status when no answer
      // came, no error type on success): the label is left out too, never set to "".
      const labels: Partial<Record<Label, string | number>> = {
        http_request_method: method,
        server_address: address,
        server_port: port,
      };
      if (status !== 0) labels.http_response_status_code = status;
      if (errorType !== undefined && errorType !== '') labels.error_type = errorType;
      child = this.#histogram.labels(labels);
      this.#children.set(key, child);
    }
    child.observe(seconds);
  }
}
