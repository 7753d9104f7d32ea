/**
 * The Prometheus series of an adaptive limit, registered by `instrument()` the same way as the
 * other policies' (label `name`; gauges read the policy at scrape time).
 */
import type { Registry as PromRegistry, RegistryContentType } from 'prom-client';
import { counter, gauge } from '../instrument.js';
import type { AdaptiveLimitPolicy } from './adaptiveLimit.js';

export const limitMetricNames = {
  limitCurrent: 'trellis_limit_current',
  limitInFlight: 'trellis_limit_in_flight',
  limitQueued: 'trellis_limit_queue_depth',
  limitRejected: 'trellis_limit_rejected_total',
  limitRtt: 'trellis_limit_rtt_seconds',
} as const;

export function attachAdaptiveLimit(
  policy: AdaptiveLimitPolicy,
  registry: PromRegistry<RegistryContentType>,
  name: string,
): void {
  gauge(
    registry,
    limitMetricNames.limitCurrent,
    'The adaptive concurrency limit now.',
    ['name'],
    name,
    () => policy.limit,
  );
  gauge(
    registry,
    limitMetricNames.limitInFlight,
    'Calls holding a slot of an adaptive limit.',
    ['name'],
    name,
    () => policy.inFlight,
  );
  gauge(
    registry,
    limitMetricNames.limitQueued,
    'Calls waiting for a slot of an adaptive limit.',
    ['name'],
    name,
    () => policy.queued,
  );
  gauge(
    registry,
    limitMetricNames.limitRtt,
    'The last latency sample an adaptive limit learned from, in seconds.',
    ['name'],
    name,
    () => policy.rttMs / 1000,
  );
  const rejected = counter(
    registry,
    limitMetricNames.limitRejected,
    'Calls an adaptive limit rejected.',
    ['name'],
  );
  policy.onReject(() => rejected.inc({ name }));
}
