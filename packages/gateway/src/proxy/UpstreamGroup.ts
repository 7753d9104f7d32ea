/**
 * The instances behind one route: a fixed URL list (wrapped in `staticDiscovery`) or a service
 * name resolved through the gateway's `Resolver`, a balancer (peakEwma by default) and, per
 * instance, a circuit breaker.
 */
import type { Clock, Instance, Logger, Pick, Resolver, StatusRegistryLike } from '@trellis/core';
import {
  instanceFromUrl,
  leastRequest,
  peakEwma,
  random,
  roundRobin,
  type StaticDiscovery,
  staticDiscovery,
  type TrellisBalancer,
} from '@trellis/discovery';
import { type KeyedCircuitBreaker, keyedCircuitBreaker } from '@trellis/resilience';
import type { RouteConfig } from '../config/gatewayConfig.js';

/** One resolved upstream instance with what the proxy needs to reach it. */
export interface UpstreamTarget {
  readonly instance: Instance;
  /** `http://host:port` */
  readonly origin: string;
  /** Base path from the instance URL (`''` or `/base`). */
  readonly basePath: string;
  /** `host:port` for the Host header and metrics. */
  readonly host: string;
}

const targets = new WeakMap<Instance, UpstreamTarget>();

/** Splits an instance URL once (cached per instance object). */
export function targetOf(instance: Instance): UpstreamTarget {
  let t = targets.get(instance);
  if (t === undefined) {
    const u = new URL(instance.url);
    const basePath = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '');
    t = { instance, origin: u.origin, basePath, host: u.host };
    targets.set(instance, t);
  }
  return t;
}

export class UpstreamGroup {
  readonly name: string;
  readonly balancer: TrellisBalancer;
  readonly breakers: KeyedCircuitBreaker | undefined;
  #instances: readonly Instance[] = [];
  readonly #own: StaticDiscovery | undefined;
  readonly #unwatch: () => void;

  constructor(
    route: RouteConfig,
    routeId: string,
    deps: {
      resolver: Resolver | undefined;
      clock: Clock;
      logger: Logger;
      /** Where the balancer (as `<routeId>`) and each instance's breaker register. */
      status?: StatusRegistryLike | undefined;
    },
  ) {
    const up = route.upstream;
    const make = { peakEwma, roundRobin, leastRequest, random }[up.balancer];
    const status = deps.status === undefined ? {} : { name: routeId, status: deps.status };
    this.balancer = make({ clock: deps.clock, ...status });
    const cb = route.circuitBreaker;
    this.breakers =
      cb === false
        ? undefined
        : keyedCircuitBreaker({
            consecutiveFailures: cb.consecutiveFailures,
            ...(cb.failureRateThreshold === undefined
              ? {}
              : { failureRateThreshold: cb.failureRateThreshold }),
            minimumCalls: cb.minimumCalls,
            windowMs: cb.windowMs,
            halfOpenAfterMs: cb.halfOpenAfterMs,
            clock: deps.clock,
            ...status,
          });
    let resolver: Resolver;
    if (up.urls !== undefined) {
      this.name = routeId;
      this.#own = staticDiscovery({ services: { [routeId]: up.urls }, clock: deps.clock });
      resolver = this.#own;
      // Known synchronously: the route serves from its first request.
      this.#instances = up.urls.map((u) => instanceFromUrl(u));
    } else {
      this.name = up.service as string;
      if (deps.resolver === undefined) {
        throw new TypeError(`route ${routeId}: upstream.service needs a resolver`);
      }
      resolver = deps.resolver;
      this.#own = undefined;
      resolver.resolve(this.name).then(
        (list) => {
          if (this.#instances.length === 0) this.#instances = list;
        },
        (err: unknown) => deps.logger.warn({ err, service: this.name }, 'gateway: resolve failed'),
      );
    }
    this.#unwatch = resolver.watch(this.name, (list) => {
      const gone = new Set(this.#instances.map((i) => i.id));
      for (const i of list) gone.delete(i.id);
      this.#instances = list;
      for (const id of gone) this.breakers?.delete(id);
    });
  }

  get instances(): readonly Instance[] {
    return this.#instances;
  }

  /** Picks an instance, avoiding `exclude`; undefined when none is available. */
  pick(exclude: ReadonlySet<string> | undefined): Pick | undefined {
    return this.balancer.pick(this.#instances, exclude === undefined ? undefined : { exclude });
  }

  async close(): Promise<void> {
    this.#unwatch();
    this.breakers?.close();
    this.balancer.close();
    await this.#own?.close();
  }
}
