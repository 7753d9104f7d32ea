import { Resolver as DnsResolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import {
  asError,
  type Backoff,
  type Clock,
  type ClockTimer,
  clampDelay,
  clockField,
  describeThrown,
  durationMs,
  type Event,
  type Instance,
  type Logger,
  loggerField,
  parseOptions,
  type Resolver,
  silentLogger,
  systemClock,
} from '@trellis/core';
import { z } from 'zod';
import { DiscoveryUnavailableError } from './errors.js';
import { hostPort, sortInstances } from './instances.js';
import { reconnectBackoff } from './reconnectBackoff.js';
import { type ServiceStatus, ServiceTable, type StaleEvent } from './ServiceTable.js';
import { type ResolvedSrv, srvInstances } from './srvInstances.js';

export interface DnsDiscoveryOptions {
  /** DNS servers (`'10.0.0.2'`, `'127.0.0.1:5353'`, `'[::1]:53'`); default: the system's. */
  readonly servers?: readonly string[];
  /**
   * How a service name is looked up: `'srv'` (`_http._tcp.api.ns.svc.cluster.local`), `'a'`
   * (A/AAAA of `host` or `host:port`), or `'auto'` (default): SRV when the name starts with `_`.
   */
  readonly mode?: 'auto' | 'srv' | 'a';
  /** Address families for A/AAAA lookups (also of SRV targets): 4, 6, or 0 for both. Default 4. */
  readonly family?: 0 | 4 | 6;
  /** Port for A/AAAA names given without one. */
  readonly port?: number;
  /** URL scheme of the instances. Default `'http'`. */
  readonly scheme?: 'http' | 'https';
  /** SRV: serve only the lowest priority that has reachable targets (default), or all of them. */
  readonly priorities?: 'lowest' | 'all';
  /** Fixed re-resolve interval; default: the answer's TTL, clamped to [minRefreshMs, maxRefreshMs]. */
  readonly refreshMs?: number;
  /** Default 1 000. */
  readonly minRefreshMs?: number;
  /** Default 30 000; also the cap of the retry backoff while the DNS server fails. */
  readonly maxRefreshMs?: number;
  /** Per-query timeout. Default 2 000. */
  readonly timeoutMs?: number;
  /** Tries per query and server. Default 2. */
  readonly tries?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A resolver that looks services up in DNS. */
export interface DnsDiscovery extends Resolver {
  /** Freshness of one service's list (stale while the DNS server fails). */
  status(service: string): ServiceStatus;
  /** Fires when a refresh fails and the last known good list is kept. */
  readonly onStale: Event<StaleEvent>;
}

const schema = z
  .object({
    servers: z
      .array(z.string().min(1))
      .min(1)
      .superRefine((servers, ctx) => {
        try {
          new DnsResolver().setServers(servers);
        } catch (err) {
          ctx.addIssue({
            code: 'custom',
            message: `invalid DNS server list: ${describeThrown(err)}`,
          });
        }
      })
      .optional(),
    mode: z.enum(['auto', 'srv', 'a']).default('auto'),
    family: z.union([z.literal(0), z.literal(4), z.literal(6)]).default(4),
    port: z.number().int().min(1).max(65_535).optional(),
    scheme: z.enum(['http', 'https']).default('http'),
    priorities: z.enum(['lowest', 'all']).default('lowest'),
    refreshMs: durationMs({ positive: true }).optional(),
    minRefreshMs: durationMs({ positive: true }).default(1_000),
    maxRefreshMs: durationMs({ positive: true }).default(30_000),
    timeoutMs: durationMs({ positive: true }).int().default(2_000),
    tries: z.number().int().min(1).default(2),
    clock: clockField().optional(),
    logger: loggerField().optional(),
  })
  .strict();

/** Answers meaning "this name has no such records": an authoritative empty list, not a failure. */
const EMPTY_CODES = new Set(['ENODATA', 'ENOTFOUND', 'NXDOMAIN']);

const errCode = (err: unknown): string | undefined =>
  typeof err === 'object' && err !== null ? (err as { code?: string }).code : undefined;

interface Answer {
  instances: Instance[];
  /** Smallest TTL seen, seconds; undefined when the records carry none (SRV). */
  ttl: number | undefined;
}

/**
 * DNS discovery: A/AAAA or SRV lookups against the DNS servers you name, with SRV priority and
 * weight per RFC 2782, re-resolved on the answer's TTL (or a fixed interval). When the DNS server
 * fails, the last known good list is kept, `onStale` fires and `status()` says how stale it is,
 * and lookups are retried with backoff.
 *
 * @example
 * ```ts
 * import { dnsDiscovery, peakEwma } from '@trellis/discovery';
 * // Kubernetes headless service: one SRV answer per ready pod.
 * const discovery = dnsDiscovery({ servers: ['10.96.0.10'] });
 * const instances = await discovery.resolve('_http._tcp.users.default.svc.cluster.local');
 * const pick = peakEwma().pick(instances);
 * await discovery.close();
 * ```
 */
export function dnsDiscovery(options: DnsDiscoveryOptions = {}): DnsDiscovery {
  const opts = parseOptions(schema, options, 'dnsDiscovery');
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silentLogger;
  const dns = new DnsResolver({ timeout: opts.timeoutMs, tries: opts.tries });
  if (opts.servers) dns.setServers(opts.servers); // checked by the schema
  const timers = new Map<string, ClockTimer>();
  const backoffs = new Map<string, Backoff>();

  const addresses = async (host: string): Promise<{ list: string[]; ttl: number | undefined }> => {
    if (isIP(host)) return { list: [host], ttl: undefined };
    const list: string[] = [];
    let ttl: number | undefined;
    let empty = 0;
    const families = opts.family === 0 ? [4, 6] : [opts.family];
    for (const family of families) {
      try {
        const records =
          family === 4
            ? await dns.resolve4(host, { ttl: true })
            : await dns.resolve6(host, { ttl: true });
        for (const r of records) {
          list.push(r.address);
          ttl = ttl === undefined ? r.ttl : Math.min(ttl, r.ttl);
        }
      } catch (err) {
        if (!EMPTY_CODES.has(errCode(err) ?? '')) throw err;
        empty++;
      }
    }
    if (empty === families.length) return { list: [], ttl: undefined };
    return { list, ttl };
  };

  const lookup = async (service: string): Promise<Answer> => {
    const srv = opts.mode === 'srv' || (opts.mode === 'auto' && service.startsWith('_'));
    if (srv) {
      let records: Awaited<ReturnType<DnsResolver['resolveSrv']>>;
      try {
        records = await dns.resolveSrv(service);
      } catch (err) {
        if (EMPTY_CODES.has(errCode(err) ?? '')) return { instances: [], ttl: undefined };
        throw err;
      }
      let ttl: number | undefined;
      const resolved: ResolvedSrv[] = [];
      for (const r of records) {
        if (r.name === '.' || r.name === '') {
          resolved.push({ ...r, addresses: [] });
          continue;
        }
        const a = await addresses(r.name);
        if (a.ttl !== undefined) ttl = ttl === undefined ? a.ttl : Math.min(ttl, a.ttl);
        resolved.push({ ...r, addresses: a.list });
      }
      return { instances: srvInstances(resolved, opts.scheme, opts.priorities), ttl };
    }
    let host = service;
    let port = opts.port;
    const m = /^(.*):(\d+)$/.exec(service);
    if (m && !service.endsWith(']') && (m[1]!.startsWith('[') || !m[1]!.includes(':'))) {
      host = m[1]!.replace(/^\[|\]$/g, '');
      port = Number(m[2]);
    }
    if (port === undefined) {
      throw new TypeError(
        `dnsDiscovery: "${service}" has no port: use "host:port", an SRV name, or the port option`,
      );
    }
    const a = await addresses(host);
    const instances = sortInstances(
      a.list.map((address) => {
        const id = hostPort(address, port);
        return { id, url: `${opts.scheme}://${id}`, metadata: { host } };
      }),
    );
    return { instances, ttl: a.ttl };
  };

  const schedule = (service: string, ms: number) => {
    if (table.closed) return;
    const timer = clock.setTimeout(() => {
      timers.delete(service);
      void refresh(service);
    }, clampDelay(ms)); // a TTL comes from the wire
    timer.unref?.();
    timers.set(service, timer);
  };

  const refresh = async (service: string): Promise<void> => {
    let backoff = backoffs.get(service);
    if (backoff === undefined) {
      backoff = reconnectBackoff(Math.min(500, opts.minRefreshMs), opts.maxRefreshMs);
      backoffs.set(service, backoff);
    }
    try {
      const answer = await lookup(service);
      if (table.closed) return;
      backoff.reset();
      table.update(service, answer.instances);
      const ttlMs = answer.ttl === undefined ? opts.maxRefreshMs : answer.ttl * 1000;
      const next =
        opts.refreshMs ?? Math.min(opts.maxRefreshMs, Math.max(opts.minRefreshMs, ttlMs));
      schedule(service, next);
    } catch (err) {
      if (table.closed) return;
      const error = asError(err);
      logger.warn({ err: error, service }, 'dns discovery: lookup failed, keeping last known good');
      table.fail(service, error);
      schedule(service, Math.min(backoff.next(), opts.refreshMs ?? opts.maxRefreshMs));
    }
  };

  const table: ServiceTable = new ServiceTable(
    clock,
    (service) => void refresh(service),
    (service, cause) =>
      new DiscoveryUnavailableError(`dns: cannot resolve "${service}": ${cause.message}`, {
        backend: 'dns',
        service,
        cause,
      }),
  );

  return {
    resolve: (service) => table.resolve(service),
    watch: (service, onChange) => table.watch(service, onChange),
    status: (service) => table.status(service),
    onStale: table.onStale,
    async close() {
      table.close();
      for (const t of timers.values()) clock.clearTimeout(t);
      timers.clear();
      dns.cancel();
    },
  };
}
