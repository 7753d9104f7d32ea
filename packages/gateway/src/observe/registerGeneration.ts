/**
 * What one config generation shows in the status registry, besides what its components register
 * themselves (balancers as `upstream` entries, per-instance breakers as `<route>/<instance>`,
 * retry budgets and bulkheads under the route's name): one `route` entry per route, and the
 * breakers of the instances already known (so they can be isolated before the first request).
 */
import type { Generation, RouteRuntime } from '../proxy/Generation.js';
import { type StatusScope, statusName } from './StatusScope.js';

export function registerGeneration(gen: Generation, scope: StatusScope): void {
  for (const route of gen.routes) {
    const breakers = route.upstream.breakers;
    if (breakers !== undefined) for (const i of route.upstream.instances) breakers.get(i.id);
    scope.register(statusName(route.id), {
      kind: 'route',
      snapshot: () => routeSnapshot(gen, route),
    });
  }
}

function routeSnapshot(gen: Generation, route: RouteRuntime): Record<string, unknown> {
  const c = route.config;
  const limit = gen.edge.concurrency.get(route.id)?.limit;
  const breakers = route.upstream.breakers;
  return {
    id: route.id,
    path: route.path,
    ...(route.methods !== undefined && { methods: route.methods }),
    ...(route.hosts !== undefined && { hosts: route.hosts }),
    upstream: statusName(route.id),
    ...(c.upstream.service !== undefined && { service: c.upstream.service }),
    balancer: c.upstream.balancer,
    instances: route.upstream.instances.map((i) => ({
      id: i.id,
      url: i.url,
      ...(breakers !== undefined && { breaker: breakers.get(i.id).state }),
    })),
    websocket: c.websocket,
    retry: route.retry === undefined ? false : { attempts: route.retry.attempts },
    ...(route.bulkhead !== undefined && {
      bulkhead: { limit: c.bulkhead?.limit, running: route.bulkhead.running },
    }),
    ...(limit !== undefined && {
      concurrency: { algorithm: limit.algorithm, limit: limit.limit, inFlight: limit.inFlight },
    }),
    auth: c.auth !== undefined,
    rateLimit: c.rateLimit !== undefined,
  };
}
