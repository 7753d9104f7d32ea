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
import { z } from 'zod';
import {
  b64,
  EtcdGateway,
  type EtcdKv,
  type EtcdWatchResult,
  prefixEnd,
  unb64,
} from './EtcdGateway.js';
import { DiscoveryUnavailableError, RegistrationError } from './errors.js';
import { instanceUrlSchema, sortInstances } from './instances.js';
import type { Registrar, Registration } from './Registrar.js';
import { Registrations } from './Registrations.js';
import { reconnectBackoff } from './reconnectBackoff.js';
import { type ServiceStatus, ServiceTable, type StaleEvent } from './ServiceTable.js';
import { Sleeper } from './Sleeper.js';

export interface EtcdDiscoveryOptions {
  /** etcd client URLs, e.g. `['http://127.0.0.1:2379']`; tried in turn when one fails. */
  readonly endpoints: readonly string[];
  /** Key prefix; an instance lives at `<prefix><service>/<instance id>`. Default `/trellis/services/`. */
  readonly prefix?: string;
  /** Timeout of each unary call to etcd. Default 5 000. */
  readonly requestTimeoutMs?: number;
  /** Reconnect backoff while etcd is unreachable: first delay. Default 200. */
  readonly backoffBaseMs?: number;
  /** Reconnect backoff cap. Default 10 000. */
  readonly backoffMaxMs?: number;
  readonly clock?: Clock;
  readonly logger?: Logger;
}

/** Options of `etcdDiscovery().register()`. */
export interface EtcdRegisterOptions {
  /** The service the instance belongs to. */
  readonly service: string;
  /** Lease TTL: a crashed instance disappears this long after its last keep-alive. Default 10. */
  readonly ttlSeconds?: number;
}

/** A resolver and registrar backed by etcd v3 (through its JSON gateway). */
export interface EtcdDiscovery extends Resolver, Registrar<EtcdRegisterOptions> {
  status(service: string): ServiceStatus;
  /** Fires when etcd becomes unreachable and the last known list is served. */
  readonly onStale: Event<StaleEvent>;
}

const schema = z
  .object({
    endpoints: z.array(z.string().url()).min(1),
    prefix: z.string().min(1).default('/trellis/services/'),
    requestTimeoutMs: durationMs({ positive: true }).default(5_000),
    backoffBaseMs: durationMs({ positive: true }).default(200),
    backoffMaxMs: durationMs({ positive: true }).default(10_000),
    clock: clockField().optional(),
    logger: loggerField().optional(),
  })
  .strict();

const instanceSchema = z
  .object({
    id: z
      .string()
      .min(1)
      .regex(/^[^/]+$/, 'must not contain "/"'),
    url: instanceUrlSchema,
    weight: z.number().positive().optional(),
    metadata: z.record(z.string(), z.string()).optional(),
  })
  .strict();
const registerSchema = z
  .object({
    service: z
      .string()
      .min(1)
      .regex(/^[^/]+$/, 'must not contain "/"'),
    ttlSeconds: z.number().int().min(1).default(10),
  })
  .strict();

interface Listed {
  readonly instance: Instance;
  readonly revision: number;
}

/**
 * One instance per id: balancers key their state by id, so when two keys claim the same id
 * (a stale key from a crashed process, a copy-paste), the one written last (highest
 * `mod_revision`; on a tie, the greater key) is served and the other ignored.
 */
function newestPerId(kvs: ReadonlyMap<string, Listed>): Instance[] {
  const byId = new Map<string, Listed & { key: string }>();
  for (const [key, listed] of kvs) {
    const id = listed.instance.id;
    const held = byId.get(id);
    if (
      held === undefined ||
      listed.revision > held.revision ||
      (listed.revision === held.revision && key > held.key)
    ) {
      byId.set(id, { ...listed, key });
    }
  }
  return [...byId.values()].map((l) => l.instance);
}

interface WatchState {
  /** etcd key -> instance, with the revision that wrote it */
  readonly kvs: Map<string, Listed>;
  /** Revision up to which the list is known. */
  revision: number;
  needList: boolean;
  abort: AbortController | undefined;
}

/**
 * etcd discovery: instances under a key prefix, each written with a lease that `register()` keeps
 * alive. `watch`/`resolve` list the prefix once, then follow a watch stream from the next
 * revision; when the stream drops (etcd restarted, network), it resumes from the last revision
 * seen, and when etcd cancels it because that revision was compacted, it lists again. Watchers
 * get the full list on every change, never twice for the same one.
 *
 * @example
 * ```ts
 * import { etcdDiscovery } from '@trellis/discovery';
 * const etcd = etcdDiscovery({ endpoints: ['http://127.0.0.1:2379'] });
 * const registration = await etcd.register(
 *   { id: '10.0.0.7:8080', url: 'http://10.0.0.7:8080' },
 *   { service: 'users', ttlSeconds: 10 },
 * );
 * etcd.watch('users', (instances) => console.log(instances.map((i) => i.id)));
 * // on shutdown:
 * await registration.deregister();
 * await etcd.close();
 * ```
 */
export function etcdDiscovery(options: EtcdDiscoveryOptions): EtcdDiscovery {
  const opts = parseOptions(schema, options, 'etcdDiscovery');
  const clock = opts.clock ?? systemClock;
  const logger = opts.logger ?? silentLogger;
  const gateway = new EtcdGateway(opts.endpoints, opts.requestTimeoutMs);
  const sleeper = new Sleeper(clock);
  const watches = new Map<string, WatchState>();
  const registrations = new Registrations('etcd discovery', logger);
  const servicePrefix = (service: string) => `${opts.prefix}${service}/`;

  const toList = (w: WatchState) => sortInstances(newestPerId(w.kvs));

  const parseKv = (kv: EtcdKv): Instance | undefined => {
    try {
      const parsed = instanceSchema.safeParse(JSON.parse(unb64(kv.value)));
      if (parsed.success) return parsed.data;
      logger.warn({ key: unb64(kv.key) }, 'etcd discovery: ignoring a malformed instance value');
    } catch {
      logger.warn({ key: unb64(kv.key) }, 'etcd discovery: ignoring a non-JSON instance value');
    }
    return undefined;
  };

  const list = async (service: string, w: WatchState) => {
    const prefix = servicePrefix(service);
    const res = await gateway.call<{ header?: { revision?: string }; kvs?: EtcdKv[] }>(
      '/v3/kv/range',
      { key: b64(prefix), range_end: prefixEnd(prefix) },
    );
    w.kvs.clear();
    for (const kv of res.kvs ?? []) {
      const inst = parseKv(kv);
      if (inst)
        w.kvs.set(unb64(kv.key), { instance: inst, revision: Number(kv.mod_revision ?? 0) });
    }
    w.revision = Number(res.header?.revision ?? 0);
    w.needList = false;
    table.update(service, toList(w));
  };

  /** Applies one watch message; returns false when the watch was cancelled. */
  const apply = (service: string, w: WatchState, result: EtcdWatchResult): boolean => {
    if (result.canceled) {
      // Compacted (or otherwise cancelled): the only safe way on is a fresh list.
      logger.info(
        { service, compactRevision: result.compact_revision, reason: result.cancel_reason },
        'etcd discovery: watch cancelled, re-listing',
      );
      w.needList = true;
      return false;
    }
    if (result.created) {
      // Connected again: the list is confirmed up to this revision.
      table.update(service, toList(w));
      return true;
    }
    let changed = false;
    const events = result.events ?? [];
    let lastEventRev = 0;
    for (const ev of events) {
      const rev = Number(ev.kv.mod_revision ?? 0);
      if (rev > lastEventRev) lastEventRev = rev;
      if (rev !== 0 && rev <= w.revision) continue; // already applied (never twice)
      const key = unb64(ev.kv.key);
      if (ev.type === 'DELETE') {
        changed = w.kvs.delete(key) || changed;
      } else {
        const inst = parseKv(ev.kv);
        if (inst) {
          w.kvs.set(key, { instance: inst, revision: rev });
          changed = true;
        } else {
          changed = w.kvs.delete(key) || changed;
        }
      }
    }
    // With events, resume after the last one (the header may be ahead while a catch-up is still
    // being delivered); without (a progress notification), the header revision is complete.
    const seen = events.length > 0 ? lastEventRev : Number(result.header?.revision ?? 0);
    if (seen > w.revision) w.revision = seen;
    if (changed) table.update(service, toList(w));
    return true;
  };

  const follow = async (service: string) => {
    const w: WatchState = { kvs: new Map(), revision: 0, needList: true, abort: undefined };
    watches.set(service, w);
    const backoff = reconnectBackoff(opts.backoffBaseMs, opts.backoffMaxMs);
    while (!sleeper.closed) {
      try {
        if (w.needList) await list(service, w);
        const abort = new AbortController();
        w.abort = abort;
        const prefix = servicePrefix(service);
        await gateway.watch(
          {
            key: b64(prefix),
            range_end: prefixEnd(prefix),
            start_revision: String(w.revision + 1),
            progress_notify: true,
          },
          abort.signal,
          (result) => {
            if (result.created) backoff.reset();
            if (!apply(service, w, result)) abort.abort();
          },
        );
        w.abort = undefined;
      } catch (err) {
        w.abort = undefined;
        if (sleeper.closed) return;
        const error = asError(err);
        logger.warn({ err: error, service }, 'etcd discovery: watch failed, retrying');
        table.fail(service, error);
        await sleeper.wait(backoff.next());
      }
    }
  };

  const table: ServiceTable = new ServiceTable(
    clock,
    (service) => {
      sleeper.run(() => follow(service));
    },
    (service, cause) =>
      new DiscoveryUnavailableError(`etcd: cannot list "${service}": ${cause.message}`, {
        backend: 'etcd',
        service,
        cause,
      }),
  );

  const register = async (
    instance: Instance,
    registerOptions: EtcdRegisterOptions,
  ): Promise<Registration> => {
    if (sleeper.closed) throw new ShutdownError('etcd discovery is closed');
    const inst = parseOptions(instanceSchema, instance, 'etcdDiscovery.register(instance)');
    const ro = parseOptions(registerSchema, registerOptions, 'etcdDiscovery.register');
    const key = b64(`${servicePrefix(ro.service)}${inst.id}`);
    const value = b64(JSON.stringify(inst));
    let leaseId = '';
    const failure = (err: unknown, what: string) =>
      new RegistrationError(`etcd: ${what} "${inst.id}" failed: ${describeThrown(err)}`, {
        backend: 'etcd',
        instanceId: inst.id,
        cause: err,
      });

    const grantAndPut = async () => {
      const lease = await gateway.call<{ ID?: string; TTL?: string }>('/v3/lease/grant', {
        TTL: String(ro.ttlSeconds),
      });
      if (!lease.ID) throw new Error('lease grant returned no ID');
      leaseId = lease.ID;
      await gateway.call('/v3/kv/put', { key, value, lease: leaseId });
    };
    try {
      await grantAndPut();
    } catch (err) {
      throw failure(err, 'registering');
    }
    const registration = registrations.add(inst, async () => {
      try {
        await gateway.call('/v3/lease/revoke', { ID: leaseId });
      } catch (err) {
        throw failure(err, 'deregistering');
      }
    });

    // Keep-alive loop: every TTL/3; a lease that expired meanwhile (etcd was down for longer than
    // the TTL) is granted again and the key rewritten.
    const keepAlive = async () => {
      const backoff = reconnectBackoff(opts.backoffBaseMs, (ro.ttlSeconds * 1000) / 3);
      let delay = (ro.ttlSeconds * 1000) / 3;
      while (registration.active && !sleeper.closed) {
        await sleeper.wait(delay);
        if (!registration.active || sleeper.closed) return;
        try {
          const res = await gateway.call<{ result?: { TTL?: string } }>('/v3/lease/keepalive', {
            ID: leaseId,
          });
          if (!registration.active) return;
          if (!(Number(res.result?.TTL ?? 0) > 0)) {
            logger.warn({ instance: inst.id }, 'etcd discovery: lease lost, registering again');
            await grantAndPut();
          }
          backoff.reset();
          delay = (ro.ttlSeconds * 1000) / 3;
        } catch (err) {
          logger.warn(
            { err: asError(err), instance: inst.id },
            'etcd discovery: keep-alive failed, retrying',
          );
          delay = backoff.next();
        }
      }
    };
    sleeper.run(keepAlive);

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
      // Deregister first (revoking leases needs the connection), then stop every loop.
      await registrations.closeAll();
      sleeper.close();
      table.close();
      for (const w of watches.values()) w.abort?.abort();
      await sleeper.drained();
      await gateway.close();
    },
  };
}
