import { Counter, Gauge } from 'prom-client';
import type { Metrics } from '../metrics/createMetrics.js';
import type { StatusRegistry } from './createStatusRegistry.js';

/** The metrics {@link statusMetrics} registers. */
export const statusMetricNames = {
  events: 'trellis_status_events_total',
  instances: 'trellis_service_instances',
  budgetAvailable: 'trellis_retry_budget_available',
} as const;

/**
 * Exposes what the status registry knows as Prometheus metrics: every status event counted by
 * kind, source and type (`ejected`, `state-change`, `budget-exhausted`, `control`, `shutdown`),
 * instances per service by state (`healthy`, `ejected`), and the retries each retry budget has
 * left. The alert rules in `ops/` (ejection storm, retry budget exhausted) read these. Returns a
 * function that unregisters them.
 *
 * @example
 * ```ts
 * import { createMetrics, createStatusRegistry, statusMetrics } from '@trellis/core';
 * const metrics = createMetrics();
 * const status = createStatusRegistry({ service: 'orders' });
 * statusMetrics(status, metrics);
 * ```
 */
export function statusMetrics(status: StatusRegistry, metrics: Metrics): () => void {
  const registry = metrics.registry;
  const events = new Counter({
    name: statusMetricNames.events,
    help: 'Status events reported by registered components, by kind, source and type (ejected, state-change, budget-exhausted, control, shutdown, ...).',
    labelNames: ['kind', 'source', 'type'],
    registers: [registry],
  });
  new Gauge({
    name: statusMetricNames.instances,
    help: 'Instances of each registered service, by state: healthy or ejected.',
    labelNames: ['service', 'state'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of status.snapshot().components) {
        if (c.kind !== 'service' && c.kind !== 'upstream') continue;
        const list = Array.isArray(c.instances) ? (c.instances as { ejected?: boolean }[]) : [];
        const ejected = list.filter((i) => i.ejected === true).length;
        this.set({ service: c.name, state: 'healthy' }, list.length - ejected);
        this.set({ service: c.name, state: 'ejected' }, ejected);
      }
    },
  });
  new Gauge({
    name: statusMetricNames.budgetAvailable,
    help: 'Retries a retry budget allows now.',
    labelNames: ['name'],
    registers: [registry],
    collect() {
      this.reset();
      for (const c of status.snapshot().components) {
        if (c.kind === 'budget' && typeof c.available === 'number') {
          this.set({ name: c.name }, c.available);
        }
      }
    },
  });
  const off = status.onEvent((e) => events.inc({ kind: e.kind, source: e.source, type: e.type }));
  return () => {
    off();
    registry.removeSingleMetric(statusMetricNames.events);
    registry.removeSingleMetric(statusMetricNames.instances);
    registry.removeSingleMetric(statusMetricNames.budgetAvailable);
  };
}
