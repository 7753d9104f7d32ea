import type { Metric } from 'prom-client';

/** One label set's counts. `buckets[i]` counts observations in (bound[i-1], bound[i]]. */
interface Series {
  readonly labels: Readonly<Record<string, string>>;
  readonly buckets: Float64Array;
  sum: number;
  count: number;
}

interface Sample {
  metricName: string;
  labels: Record<string, string | number>;
  value: number;
}

/** The three label names of a {@link DurationHistogram}: two strings, then a status code. */
export type DurationLabelNames = readonly [string, string, string];

/**
 * A duration histogram with three labels (two strings and a status code), recorded without
 * per-observation allocation or label hashing: series are cached in nested maps, and the
 * exposition values are built only at scrape time. It registers on a prom-client `Registry` like
 * any prom-client metric (the registry only calls `get()`), so the output format is
 * prom-client's. `http_server_request_duration_seconds` is one; the gateway's upstream histogram
 * is another.
 */
export class DurationHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames: DurationLabelNames;
  readonly upperBounds: readonly number[];
  #series = new Map<string, Map<string, Map<number, Series>>>();

  constructor(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: DurationLabelNames = [
      'http_request_method',
      'http_route',
      'http_response_status_code',
    ],
  ) {
    this.name = name;
    this.help = help;
    this.upperBounds = [...buckets].sort((a, b) => a - b);
    this.labelNames = labelNames;
  }

  /**
   * Records one observation: the values of the first, second and third label (for the server
   * histogram: normalised method, route template, status).
   */
  observe(first: string, second: string, status: number, seconds: number): void {
    if (!(seconds >= 0)) return;
    const series = this.#get(first, second, status);
    const bounds = this.upperBounds;
    let i = 0;
    while (i < bounds.length && seconds > (bounds[i] as number)) i++;
    series.buckets[i] = (series.buckets[i] as number) + 1;
    series.sum += seconds;
    series.count++;
  }

  #get(first: string, second: string, status: number): Series {
    let byFirst = this.#series.get(second);
    if (byFirst === undefined) {
      byFirst = new Map();
      this.#series.set(second, byFirst);
    }
    let byStatus = byFirst.get(first);
    if (byStatus === undefined) {
      byStatus = new Map();
      byFirst.set(first, byStatus);
    }
    let series = byStatus.get(status);
    if (series === undefined) {
      const [a, b, c] = this.labelNames;
      series = {
        labels: { [a]: first, [b]: second, [c]: String(status) },
        buckets: new Float64Array(this.upperBounds.length + 1),
        sum: 0,
        count: 0,
      };
      byStatus.set(status, series);
    }
    return series;
  }

  /** The prom-client metric contract: called by the registry at scrape time. */
  async get(): Promise<{
    name: string;
    help: string;
    type: string;
    aggregator: string;
    values: Sample[];
  }> {
    const values: Sample[] = [];
    const bucketName = `${this.name}_bucket`;
    for (const byMethod of this.#series.values()) {
      for (const byStatus of byMethod.values()) {
        for (const s of byStatus.values()) {
          let cumulative = 0;
          for (let i = 0; i < this.upperBounds.length; i++) {
            cumulative += s.buckets[i] as number;
            values.push({
              metricName: bucketName,
              labels: { le: this.upperBounds[i] as number, ...s.labels },
              value: cumulative,
            });
          }
          values.push({
            metricName: bucketName,
            labels: { le: '+Inf', ...s.labels },
            value: s.count,
          });
          values.push({ metricName: `${this.name}_sum`, labels: { ...s.labels }, value: s.sum });
          values.push({
            metricName: `${this.name}_count`,
            labels: { ...s.labels },
            value: s.count,
          });
        }
      }
    }
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      values,
    };
  }

  /** Called by `registry.resetMetrics()`. */
  reset(): void {
    this.#series.clear();
  }

  /** This object as prom-client's registry types see it. */
  asMetric(): Metric {
    return this as unknown as Metric;
  }
}
