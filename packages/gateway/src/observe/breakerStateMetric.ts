/**
 * `trellis_gateway_breaker_state{route, instance, state}`: the state of each upstream instance's
 * circuit breaker, per route (1 for the current state, 0 for the others, as
 * `trellis_circuit_state` does), read at scrape time from the config generation in force, so
 * instances that left discovery and routes removed by a reload disappear from the next scrape.
 */
import type { Metrics } from '@trellis/core';
import { Gauge } from 'prom-client';

export const BREAKER_STATE_METRIC = 'trellis_gateway_breaker_state';

const STATES = ['closed', 'open', 'half-open'] as const;

/** One breaker of one route: `[route id, instance id, state]`. */
export type BreakerReading = readonly [route: string, instance: string, state: string];

const kSources = Symbol('trellis.gateway.breakerSources');
type Sourced = Gauge<'route' | 'instance' | 'state'> & {
  [kSources]?: Set<() => Iterable<BreakerReading>>;
};

/**
 * Adds `read` to the gauge of `metrics` (made once per registry; several gateways may share a
 * registry). Returns the function that removes it.
 */
export function breakerStateMetric(
  metrics: Metrics,
  read: () => Iterable<BreakerReading>,
): () => void {
  const registry = metrics.registry;
  let g = registry.getSingleMetric(BREAKER_STATE_METRIC) as Sourced | undefined;
  if (g === undefined) {
    const sources = new Set<() => Iterable<BreakerReading>>();
    g = new Gauge({
      name: BREAKER_STATE_METRIC,
      help: 'Circuit breaker state of each upstream instance, by route: 1 for the current state (closed, open, half-open), 0 for the others.',
      labelNames: ['route', 'instance', 'state'],
      registers: [registry],
      collect() {
        this.reset();
        for (const source of sources) {
          for (const [route, instance, state] of source()) {
            for (const s of STATES) this.set({ route, instance, state: s }, s === state ? 1 : 0);
          }
        }
      },
    }) as Sourced;
    g[kSources] = sources;
  }
  const sources = g[kSources];
  sources?.add(read);
  return () => {
    sources?.delete(read);
  };
}
