/**
 * Prometheus metrics on a per-app prom-client registry.
 * @module
 */
export {
  CLIENT_CLOSED_STATUS,
  createDurationHistogram,
  createMetrics,
  type DurationHistogramOptions,
  HTTP_DURATION_BUCKETS,
  type Metrics,
  type MetricsOptions,
  normalizeMethod,
  type ServerRequestRecord,
  UNMATCHED_ROUTE,
} from './createMetrics.js';
export { DurationHistogram, type DurationLabelNames } from './DurationHistogram.js';
