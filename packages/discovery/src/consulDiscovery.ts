import {
  asError,
  type Clock,
  clockField,
  describeThrown,
  durationMs,
  type Event,
  type Instance,
  type Logger,
  loggerField,
  parseOptions,
  type Resolver,
  ShutdownError,
  silentLogger,
  systemClock,
} from '@trellis/core';
import { Agent, request } from 'undici';
import { z } from 'zod';
import { DiscoveryUnavailableError, RegistrationError } from './errors.js';
import { hostPort, instanceUrlProblem, instanceUrlSchema, sortInstances } from './instances.js';
import type { Registrar, Registration } from './Registrar.js';
import { Registrations } from './Registrations.js';
import { reconnectBackoff } from './reconnectBackoff.js';
import { type ServiceStatus, ServiceTable, type StaleEvent } from './ServiceTable.js';
import { Sleeper } from './Sleeper.js';
import { TokenBucket } from './TokenBucket.js';

export interface ConsulDiscoveryOptions {
  /** The Consul agent's HTTP API, e.g. `http://127.0.0.1:8500`. */
  readonly url: string;
  /** ACL token, sent as `X-Consul-Token`. */
  readonly token?: string;
  /** Datacenter to query (`dc=`); default: the agent's. */
  readonly datacenter?: string;
  /** Only instances carrying this tag (`tag=`, filtered by Consul). */
  readonly tag?: string;
  /** Blocking-query `wait`. Default 300 000 (Consul's default, 5 min); at most 600 000. */
  readonly waitMs?: number;
  /** Token bucket on each service's query loop: one query per `minIntervalMs` after a burst of `burst`. Defaults 1 000 and 2. */
  readonly rateLimit?: { readonly minIntervalMs?: number; readonly burst?: number };
  /** Backoff while Consul fails: first delay. Default 1 000. */
  readonly backoffBaseMs?: number;
  /** Backoff cap. Default 30 000. */
  readonly backoffMaxMs?: number;
  /**
   * Timeout of non-blocking calls: the first query of a service (index 0), register, deregister,
   * TTL pass. Default 5 000. A blocking query gets `waitMs + waitMs/16 + requestTimeoutMs`.
   */
  readonly requestTimeoutMs?: number;
  /** URL scheme of the instances. Default `'http'`. */
  readonly scheme?: 'http' | 'https';
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** A health check Consul runs for a registered instance. */
export type ConsulCheck =
  /** TTL check: `register()` reports "passing" every `ttlSeconds / 2` while alive. */
  | { readonly ttlSeconds: number }
  /** HTTP check: Consul polls `http` every `intervalSeconds`. */
  | { readonly http: string; readonly intervalSeconds?: number; readonly timeoutSeconds?: number };

export interface ConsulRegisterOptions {
  /** Service name. */
  readonly service: string;
  readonly tags?: readonly string[];
  /** Default `{ ttlSeconds: 10 }`. */
  readonly check?: ConsulCheck;
  /** Consul removes the instance after its check has been critical this long. Default 60. */
  readonly deregisterCriticalAfterSeconds?: number;
}

/** A resolver and registrar backed by Consul's health API. */
export interface ConsulDiscovery extends Resolver, Registrar<ConsulRegisterOptions> {
  status(service: string): ServiceStatus;
  /** Fires when Consul fails and the last known list is served. */
  readonly onStale: Event<StaleEvent>;
}

const MAX_WAIT_MS = 600_000;

const schema = z
  .object({
    url: z.string().url(),
    token: z.string().min(1).optional(),
    datacenter: z.string().min(1).optional(),
    tag: z.string().min(1).optional(),
    waitMs: z.number().int().min(1_000).max(MAX_WAIT_MS).default(300_000),
    rateLimit: z
      .object({
        minIntervalMs: durationMs({ positive: true }).default(1_000),
        burst: z.number().int().min(1).default(2),
      })
      .strict()
      .default({ minIntervalMs: 1_000, burst: 2 }),
    backoffBaseMs: durationMs({ positive: true }).default(1_000),
    backoffMaxMs: durationMs({ positive: true }).default(30_000),
    requestTimeoutMs: durationMs({ positive: true }).default(5_000),
    scheme: z.enum(['http', 'https']).default('http'),
    clock: clockField().optional(),
    logger: loggerField().optional(),
  })
  .strict();

const checkSchema = z.union([
  z.object({ ttlSeconds: z.number().int().min(1) }).strict(),
  z
    .object({
      http: z.string().url(),
      intervalSeconds: z.number().int().min(1).default(10),
      timeoutSeconds: z.number().int().min(1).default(5),
    })
    .strict(),
]);
const registerSchema = z
  .object({
    service: z.string().min(1),
    tags: z.array(z.string()).default([]),
    check: checkSchema.default({ ttlSeconds: 10 }),
    deregisterCriticalAfterSeconds: z.number().int().min(1).default(60),
  })
  .strict();
const instanceSchema = z
  .object({
    id: z.string().min(1),
    url: instanceUrlSchema,
    weight: z.number().positive().optional(),
    metadata: z.record(z.string(), z.string()).optional(),
  })
  .strict();

/** One entry of `GET /v1/health/service/:service`. */
interface HealthEntry {
  Node?: { Node?: string; Address?: string };
  Service?: {
    ID?: string;
    Service?: string;
    Address?: string;
    Port?: number;
    Tags?: string[] | null;
    Meta?: Record<string, string> | null;
    Weights?: { Passing?: number };
  };
  Checks?: { Status?: string }[] | null;
}

/** An HTTP error answer from Consul. */
class ConsulHttpError extends Error {
  constructor(path: string, status: number, body: string) {
    super(`consul ${path}: HTTP ${status}: ${body.slice(0, 200)}`);
    this.name = 'ConsulHttpError';
  }
}

/**
 * Consul discovery through the health API with blocking queries done by the book: `index` from
 * `X-Consul-Index` plus `wait`; the index is reset to 0 when it goes backwards and raised to 1
 * when it is below 1; each service's loop is rate-limited by a token bucket (burst 2) and backs
 * off while Consul fails, so it never spins. Only instances whose checks all pass are served.
 * `register()` adds a TTL or HTTP check with `DeregisterCriticalServiceAfter`; `close()`
 * deregisters what it registered.
 *
 * @example
 * ```ts
 * import { consulDiscovery } from '@trellis/discovery';
 * const consul = consulDiscovery({ url: 'http://127.0.0.1:8500' });
 * const registration = await consul.register(
 *   { id: '10.0.0.7:8080', url: 'http://10.0.0.7:8080' },
 *   { service: 'users', check: { ttlSeconds: 10 }, deregisterCriticalAfterSeconds: 60 },
 * );
 * const instances = await consul.resolve('users');
 * await registration.deregister();
 * await consul.close();
 * ```
 */
export function consulDiscovery(options: ConsulDiscoveryOptions): ConsulDiscovery {
  const opts = parseOptions(schema, options, 'consulDiscovery');
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silentLogger;
  const base = opts.url.replace(/\/+$/, '');
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  const sleeper = new Sleeper(clock);
  const aborts = new Set<AbortController>();
  const registrations = new Registrations('consul discovery', logger);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.token) headers['x-consul-token'] = opts.token;
  const waitS = Math.ceil(opts.waitMs / 1000);

  const toInstances = (entries: HealthEntry[]): Instance[] => {
    const out: Instance[] = [];
    const seen = new Set<string>();
    for (const e of entries) {
      // Passing only: Consul filters with `passing`; check again in case a proxy or an old agent did not.
      if ((e.Checks ?? []).some((c) => c.Status !== 'passing')) continue;
      const s = e.Service;
      const address = s?.Address || e.Node?.Address;
      if (!s || !address || !s.Port) continue;
      const id = hostPort(address, s.Port);
      // Same rule as every resolver: never serve what is not an http(s) URL with a host.
      if (seen.has(id) || instanceUrlProblem(`${opts.scheme}://${id}`) !== undefined) continue;
      seen.add(id);
      const metadata: Record<string, string> = { ...(s.Meta ?? {}) };
      if (s.ID) metadata.serviceId = s.ID;
      if (e.Node?.Node) metadata.node = e.Node.Node;
      if (s.Tags && s.Tags.length > 0) metadata.tags = s.Tags.join(',');
      const weight = s.Weights?.Passing;
      out.push({
        id,
        url: `${opts.scheme}://${id}`,
        ...(weight !== undefined && weight > 0 && weight !== 1 ? { weight } : {}),
        metadata,
      });
    }
    return sortInstances(out);
  };

  const follow = async (service: string) => {
    const bucket = new TokenBucket(clock, opts.rateLimit.minIntervalMs, opts.rateLimit.burst);
    const backoff = reconnectBackoff(opts.backoffBaseMs, opts.backoffMaxMs);
    let index = 0;
    while (!sleeper.closed) {
      await bucket.take(sleeper);
      if (sleeper.closed) return;
      const abort = new AbortController();
      aborts.add(abort);
      try {
        const query = new URLSearchParams({
          passing: '1',
          index: String(index),
          wait: `${waitS}s`,
        });
        if (opts.datacenter) query.set('dc', opts.datacenter);
        if (opts.tag) query.set('tag', opts.tag);
        const path = `/v1/health/service/${encodeURIComponent(service)}?${query}`;
        // A blocking query (index > 0) may be held for wait + wait/16 of jitter: allow that and
        // some slack. The first, non-blocking query (index 0) must answer at once: it gets
        // requestTimeoutMs, like every other non-blocking call.
        const limit =
          index > 0
            ? opts.waitMs + opts.waitMs / 16 + opts.requestTimeoutMs
            : opts.requestTimeoutMs;
        const res = await request(`${base}${path}`, {
          method: 'GET',
          headers,
          dispatcher: agent,
          headersTimeout: limit,
          bodyTimeout: limit,
          signal: abort.signal,
        });
        const text = await res.body.text();
        if (res.statusCode !== 200) throw new ConsulHttpError(path, res.statusCode, text);
        const entries = JSON.parse(text) as HealthEntry[];
        const header = res.headers['x-consul-index'];
        const next = Number(Array.isArray(header) ? header[0] : header);
        // The three rules of Consul's blocking-query guidance:
        //  - no usable index: start over with a non-blocking read (the bucket bounds the rate);
        //  - the index went backwards: reset to 0, restarting the blocking loop;
        //  - otherwise take it, but never below 1, so the next request really blocks.
        if (!Number.isFinite(next) || next < index) index = 0;
        else index = Math.max(1, next);
        backoff.reset();
        table.update(service, toInstances(entries));
      } catch (err) {
        if (sleeper.closed) return;
        const error = asError(err);
        logger.warn({ err: error, service }, 'consul discovery: query failed, backing off');
        table.fail(service, error);
        index = 0;
        await sleeper.wait(backoff.next());
      } finally {
        aborts.delete(abort);
      }
    }
  };

  const table: ServiceTable = new ServiceTable(
    clock,
    (service) => {
      sleeper.run(() => follow(service));
    },
    (service, cause) =>
      new DiscoveryUnavailableError(`consul: cannot query "${service}": ${cause.message}`, {
        backend: 'consul',
        service,
        cause,
      }),
  );

  const put = async (path: string, body?: unknown) => {
    const res = await request(`${base}${path}`, {
      method: 'PUT',
      headers,
      dispatcher: agent,
      headersTimeout: opts.requestTimeoutMs,
      bodyTimeout: opts.requestTimeoutMs,
      signal: AbortSignal.timeout(opts.requestTimeoutMs),
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new ConsulHttpError(path, res.statusCode, text);
  };

  const register = async (
    instance: Instance,
    registerOptions: ConsulRegisterOptions,
  ): Promise<Registration> => {
    if (sleeper.closed) throw new ShutdownError('consul discovery is closed');
    const inst = parseOptions(instanceSchema, instance, 'consulDiscovery.register(instance)');
    const ro = parseOptions(registerSchema, registerOptions, 'consulDiscovery.register');
    const url = new URL(inst.url);
    const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
    const failure = (err: unknown, what: string) =>
      new RegistrationError(`consul: ${what} "${inst.id}" failed: ${describeThrown(err)}`, {
        backend: 'consul',
        instanceId: inst.id,
        cause: err,
      });
    const deregisterAfter = `${ro.deregisterCriticalAfterSeconds}s`;
    const check =
      'ttlSeconds' in ro.check
        ? { TTL: `${ro.check.ttlSeconds}s`, DeregisterCriticalServiceAfter: deregisterAfter }
        : {
            HTTP: ro.check.http,
            Interval: `${ro.check.intervalSeconds}s`,
            Timeout: `${ro.check.timeoutSeconds}s`,
            DeregisterCriticalServiceAfter: deregisterAfter,
          };
    const body = {
      ID: inst.id,
      Name: ro.service,
      Address: url.hostname.replace(/^\[|\]$/g, ''),
      Port: port,
      Tags: ro.tags,
      Meta: inst.metadata ?? {},
      ...(inst.weight !== undefined ? { Weights: { Passing: inst.weight, Warning: 1 } } : {}),
      Check: check,
    };
    const checkId = `service:${encodeURIComponent(inst.id)}`;
    const pass = () => put(`/v1/agent/check/pass/${checkId}`);
    try {
      await put('/v1/agent/service/register?replace-existing-checks=true', body);
      if ('ttlSeconds' in ro.check) await pass();
    } catch (err) {
      throw failure(err, 'registering');
    }
    const registration = registrations.add(inst, async () => {
      try {
        await put(`/v1/agent/service/deregister/${encodeURIComponent(inst.id)}`);
      } catch (err) {
        throw failure(err, 'deregistering');
      }
    });
    if ('ttlSeconds' in ro.check) {
      const every = (ro.check.ttlSeconds * 1000) / 2;
      const heartbeat = async () => {
        const backoff = reconnectBackoff(Math.min(opts.backoffBaseMs, every), every);
        let delay = every;
        while (registration.active && !sleeper.closed) {
          await sleeper.wait(delay);
          if (!registration.active || sleeper.closed) return;
          try {
            await pass();
            backoff.reset();
            delay = every;
          } catch (err) {
            logger.warn(
              { err: asError(err), instance: inst.id },
              'consul discovery: TTL pass failed, retrying',
            );
            delay = backoff.next();
          }
        }
      };
      sleeper.run(heartbeat);
    }
    return registration;
  };

  return {
    resolve: (service) => table.resolve(service),
    watch: (service, onChange) => table.watch(service, onChange),
    status: (service) => table.status(service),
    onStale: table.onStale,
    register,
    async close() {
      if (sleeper.closed) return;
      // Deregistration on shutdown, while the connection is still there.
      await registrations.closeAll();
      sleeper.close();
      table.close();
      for (const a of aborts) a.abort();
      await sleeper.drained();
      await agent.destroy();
    },
  };
}
