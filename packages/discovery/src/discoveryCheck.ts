import type { Instance } from '@trellis/core';
import { durationMs, methodsField, parseOptions } from '@trellis/core';
import { z } from 'zod';
import type { ServiceStatus } from './ServiceTable.js';

/** A resolver that reports freshness: every resolver in this package. */
export interface StatusSource {
  resolve(service: string): Promise<Instance[]>;
  status(service: string): ServiceStatus;
}

export interface DiscoveryCheckOptions {
  /** The resolver to watch (`dnsDiscovery`, `etcdDiscovery`, `consulDiscovery`, `staticDiscovery`). */
  readonly discovery: StatusSource;
  /** The services this process calls. */
  readonly services: readonly string[];
  /**
   * Fail (instead of warn) once a list has been stale this long, or when a service has no
   * instance list at all. Default: never fail, only warn.
   */
  readonly failAfterMs?: number;
  /** Passed through: a failing critical check fails readiness. Default false. */
  readonly critical?: boolean;
}

/** What the check returns; the shape of core's health `CheckResult`. */
export interface DiscoveryCheckResult {
  status: 'pass' | 'warn' | 'fail';
  observedValue: number;
  observedUnit: 'ms';
  output?: string;
}

/** A health check definition for core's `createHealth({ checks })`. */
export interface DiscoveryCheck {
  check(): Promise<DiscoveryCheckResult>;
  critical: boolean;
  measurement: 'staleness';
  componentType: 'component';
}

const schema = z
  .object({
    discovery: methodsField<StatusSource>(['status', 'resolve'], 'a discovery resolver'),
    services: z.array(z.string().min(1)).min(1),
    failAfterMs: durationMs({ positive: true }).optional(),
    critical: z.boolean().default(false),
  })
  .strict();

/**
 * Feeds discovery freshness into core's health report (IETF `application/health+json`): `pass`
 * while every service's list is fresh, `warn` while one is served from the last known good list
 * (the backend is failing) or is empty, `fail` only past `failAfterMs`. `observedValue` is the
 * largest staleness in ms. Not critical by default: a discovery outage with a good cached list
 * should not take this service out of rotation.
 *
 * @example
 * ```ts
 * import { createHealth } from '@trellis/core/health';
 * import { discoveryCheck, etcdDiscovery } from '@trellis/discovery';
 * const etcd = etcdDiscovery({ endpoints: ['http://127.0.0.1:2379'] });
 * const health = createHealth({
 *   checks: { discovery: discoveryCheck({ discovery: etcd, services: ['users', 'billing'] }) },
 * });
 * ```
 */
export function discoveryCheck(options: DiscoveryCheckOptions): DiscoveryCheck {
  const opts = parseOptions(schema, options, 'discoveryCheck');
  const { discovery, services } = opts;
  return {
    critical: opts.critical,
    measurement: 'staleness',
    componentType: 'component',
    async check() {
      // Make sure each service is followed (a cached promise once it is).
      await Promise.all(services.map((s) => discovery.resolve(s).catch(() => undefined)));
      let worst: DiscoveryCheckResult['status'] = 'pass';
      let maxStale = 0;
      const notes: string[] = [];
      for (const service of services) {
        const st = discovery.status(service);
        if (st.stale) {
          maxStale = Math.max(maxStale, st.staleForMs);
          const never = st.updatedAt === undefined;
          const failing =
            never || (opts.failAfterMs !== undefined && st.staleForMs >= opts.failAfterMs);
          if (failing && opts.failAfterMs !== undefined) worst = 'fail';
          else if (worst === 'pass') worst = 'warn';
          notes.push(
            never
              ? `${service}: no instance list yet (${st.error?.message ?? 'backend failing'})`
              : `${service}: stale for ${Math.round(st.staleForMs)} ms, serving ${st.instances.length} last known instance(s) (${st.error?.message ?? 'backend failing'})`,
          );
        } else if (st.instances.length === 0) {
          if (worst === 'pass') worst = 'warn';
          notes.push(`${service}: no instances`);
        }
      }
      return {
        status: worst,
        observedValue: maxStale,
        observedUnit: 'ms',
        ...(notes.length > 0 ? { output: notes.join('; ') } : {}),
      };
    },
  };
}
