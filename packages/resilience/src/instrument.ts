import { metricsField, type Policy, parseOptions } from '@trellis/core';
import {
  Counter,
  Gauge,
  type Registry as PromRegistry,
  type RegistryContentType,
} from 'prom-client';

/** A prom-client registry of either exposition format (`createMetrics().registry` fits). */
type Registry = PromRegistry<RegistryContentType>;

import { z } from 'zod';
import { AdaptiveLimitPolicy } from './adaptiveLimit/adaptiveLimit.js';
import { attachAdaptiveLimit, limitMetricNames } from './adaptiveLimit/limitMetrics.js';
import { BulkheadPolicy } from './bulkhead.js';
import { CircuitBreakerPolicy, type CircuitState } from './circuitBreaker.js';
import { FallbackPolicy } from './fallback.js';
import { HedgePolicy } from './hedge.js';
import { PipelinePolicy } from './pipeline.js';
import { RateLimitPolicy } from './rateLimit.js';
import { RetryPolicy } from './retry.js';
import { TimeoutPolicy } from './timeout.js';

/**
 * The Prometheus metrics `instrument` registers (label `name` is the policy's name):
 */
export const metricNames = {
  circuitState: 'trellis_circuit_state',
  circuitCalls: 'trellis_circuit_calls_total',
  circuitTransitions: 'trellis_circuit_transitions_total',
  retryAttempts: 'trellis_retry_attempts_total',
  retryGiveUps: 'trellis_retry_give_ups_total',
  timeouts: 'trellis_timeouts_total',
  bulkheadRunning: 'trellis_bulkhead_running',
  bulkheadQueueDepth: 'trellis_bulkhead_queue_depth',
  bulkheadRejected: 'trellis_bulkhead_rejected_total',
  hedgeAttempts: 'trellis_hedge_attempts_total',
  fallbacks: 'trellis_fallbacks_total',
  rateLimitRejected: 'trellis_rate_limit_rejected_total',
  rateLimitStoreErrors: 'trellis_rate_limit_store_errors_total',
  ...limitMetricNames,
} as const;

const schema = z.strictObject({
  registry: metricsField<Registry>(),
  name: z
    .string()
    .min(1)
    .regex(/^[\w.:/-]+$/, 'use letters, digits, and _ . : / -'),
});

export interface InstrumentOptions {
  /** Your prom-client `Registry`, e.g. `createMetrics().registry` (the global one is never used). */
  registry: Registry;
  /** The `name` label of this policy's series. */
  name: string;
}

const states: readonly CircuitState[] = ['closed', 'open', 'half-open'];
const kSources = Symbol('trellis.sources');

type Sourced<M> = M & { [kSources]?: Map<string, () => number | CircuitState> };

export function counter(registry: Registry, name: string, help: string, labelNames: string[]) {
  const existing = registry.getSingleMetric(name);
  if (existing) return existing as Counter<string>;
  return new Counter({ name, help, labelNames, registers: [registry] });
}

/** A gauge whose value is read at scrape time from every source added to it. */
export function gauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: string[],
  key: string,
  read: () => number | CircuitState,
): void {
  let g = registry.getSingleMetric(name) as Sourced<Gauge<string>> | undefined;
  if (!g) {
    const sources = new Map<string, () => number | CircuitState>();
    g = new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        for (const [label, get] of sources) {
          const value = get();
          if (typeof value === 'number') this.set({ name: label }, value);
          else for (const s of states) this.set({ name: label, state: s }, s === value ? 1 : 0);
        }
      },
    }) as Sourced<Gauge<string>>;
    g[kSources] = sources;
  }
  g[kSources]?.set(key, read);
}

/**
 * Records Prometheus metrics for a policy (or every policy of a pipeline) in your registry, and
 * returns the policy. Metric names are listed in {@link metricNames} and the README; calling it
 * again for another policy on the same registry reuses the metrics (`getSingleMetric`).
 * Gauges read the policy at scrape time, so the registry keeps a reference to it.
 *
 * @example
 * ```ts
 * import { Registry } from 'prom-client';
 * import { circuitBreaker, instrument, pipeline, retry } from '@trellis/resilience';
 * const registry = new Registry();
 * const policy = instrument(pipeline(retry(), circuitBreaker()), { registry, name: 'billing' });
 * console.log(await registry.metrics());
 * ```
 */
export function instrument<P extends Policy>(policy: P, options: InstrumentOptions): P {
  const { registry, name } = parseOptions(schema, options, 'instrument');
  attach(policy, registry, name);
  return policy;
}

// Policies already instrumented, per registry: a second call (the typed client's automatic one
// after yours) must not count every event twice.
const instrumented = new WeakMap<Policy, WeakSet<Registry>>();

function attach(policy: Policy, registry: Registry, name: string): void {
  let seen = instrumented.get(policy);
  if (seen === undefined) {
    seen = new WeakSet();
    instrumented.set(policy, seen);
  }
  if (seen.has(registry)) return;
  seen.add(registry);
  if (policy instanceof PipelinePolicy) {
    for (const p of policy.policies as readonly Policy[]) attach(p, registry, name);
  } else if (policy instanceof CircuitBreakerPolicy) {
    gauge(
      registry,
      metricNames.circuitState,
      'Circuit breaker state: 1 for the current state, 0 for the others.',
      ['name', 'state'],
      name,
      () => policy.state,
    );
    const calls = counter(
      registry,
      metricNames.circuitCalls,
      'Calls seen by a circuit breaker, by result: success, failure, rejected (not run), ignored.',
      ['name', 'result'],
    );
    const transitions = counter(
      registry,
      metricNames.circuitTransitions,
      'Circuit breaker state transitions.',
      ['name', 'from', 'to'],
    );
    policy.onCallResult((result) => calls.inc({ name, result }));
    policy.onStateChange(({ from, to }) => transitions.inc({ name, from, to }));
  } else if (policy instanceof RetryPolicy) {
    const attempts = counter(
      registry,
      metricNames.retryAttempts,
      'Retry attempts started (attempts after the first).',
      ['name'],
    );
    const giveUps = counter(
      registry,
      metricNames.retryGiveUps,
      'Calls a retry policy stopped retrying, by reason: attempts, not-retryable, budget, deadline, retry-after, circuit-open.',
      ['name', 'reason'],
    );
    policy.onRetry(() => attempts.inc({ name }));
    policy.onGiveUp(({ reason }) => giveUps.inc({ name, reason }));
  } else if (policy instanceof TimeoutPolicy) {
    const timeouts = counter(registry, metricNames.timeouts, 'Calls that timed out.', ['name']);
    policy.onTimeout(() => timeouts.inc({ name }));
  } else if (policy instanceof BulkheadPolicy) {
    gauge(
      registry,
      metricNames.bulkheadRunning,
      'Calls running in a bulkhead.',
      ['name'],
      name,
      () => policy.running,
    );
    gauge(
      registry,
      metricNames.bulkheadQueueDepth,
      'Calls waiting in a bulkhead queue.',
      ['name'],
      name,
      () => policy.queued,
    );
    const rejected = counter(
      registry,
      metricNames.bulkheadRejected,
      'Calls a full bulkhead rejected.',
      ['name'],
    );
    policy.onReject(() => rejected.inc({ name }));
  } else if (policy instanceof HedgePolicy) {
    const hedges = counter(
      registry,
      metricNames.hedgeAttempts,
      'Hedged (extra) attempts started.',
      ['name'],
    );
    policy.onHedge(() => hedges.inc({ name }));
  } else if (policy instanceof FallbackPolicy) {
    const used = counter(registry, metricNames.fallbacks, 'Calls answered by a fallback.', [
      'name',
    ]);
    policy.onFallback(() => used.inc({ name }));
  } else if (policy instanceof AdaptiveLimitPolicy) {
    attachAdaptiveLimit(policy, registry, name);
  } else if (policy instanceof RateLimitPolicy) {
    const rejected = counter(
      registry,
      metricNames.rateLimitRejected,
      'Calls or consume() refused by a rate limit.',
      ['name'],
    );
    const storeErrors = counter(
      registry,
      metricNames.rateLimitStoreErrors,
      'Rate limit store (Redis) failures, answered per onStoreError.',
      ['name'],
    );
    policy.onReject(() => rejected.inc({ name }));
    policy.onStoreError(() => storeErrors.inc({ name }));
  }
}
