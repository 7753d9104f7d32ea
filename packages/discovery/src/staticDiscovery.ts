import {
  type Clock,
  clockField,
  type Instance,
  parseOptions,
  type Resolver,
  systemClock,
} from '@trellis/core';
import { z } from 'zod';
import { instanceFromUrl, instanceUrlSchema } from './instances.js';
import { type ServiceStatus, ServiceTable } from './ServiceTable.js';

/** An instance given by URL, or in full (id, url, weight, metadata). */
export type StaticInstance = string | Instance;

export interface StaticDiscoveryOptions {
  /** service name -> instances: base URLs (id becomes `host:port`) or full `Instance` objects. */
  readonly services?: Readonly<Record<string, readonly StaticInstance[]>>;
  readonly clock?: Clock;
}

/** The embedded resolver: a fixed map that can be changed at runtime. */
export interface StaticDiscovery extends Resolver {
  /** Replaces the instances of `service` (adds the service if new); watchers see the change. */
  set(service: string, instances: readonly StaticInstance[]): void;
  /** Removes a service: it resolves to `[]` from now on. */
  delete(service: string): void;
  /** Cache state of one service (static lists are never stale). */
  status(service: string): ServiceStatus;
}

const urlSchema = instanceUrlSchema;
const instanceSchema = z
  .object({
    id: z.string().min(1),
    url: urlSchema,
    weight: z.number().positive().optional(),
    metadata: z.record(z.string(), z.string()).optional(),
  })
  .strict();
const listSchema = z.array(z.union([urlSchema, instanceSchema]));
const schema = z
  .object({
    services: z.record(z.string().min(1), listSchema).default({}),
    clock: clockField().optional(),
  })
  .strict();

function toInstances(list: readonly StaticInstance[]): Instance[] {
  const out: Instance[] = [];
  const seen = new Set<string>();
  for (const item of list) {
    const inst = typeof item === 'string' ? instanceFromUrl(item) : { ...item };
    if (seen.has(inst.id)) continue;
    seen.add(inst.id);
    out.push(inst);
  }
  return out;
}

/**
 * The embedded default resolver: a map of service -> URLs, updatable at runtime with `set()`.
 * Instance ids are `host:port`; duplicate ids are dropped (the first wins); an unknown service
 * resolves to `[]`.
 *
 * @example
 * ```ts
 * import { staticDiscovery } from '@trellis/discovery';
 * const discovery = staticDiscovery({ services: { users: ['http://127.0.0.1:3001', 'http://127.0.0.1:3002'] } });
 * const off = discovery.watch('users', (list) => console.log(list.map((i) => i.id)));
 * discovery.set('users', ['http://127.0.0.1:3003']);
 * console.log(await discovery.resolve('users')); // [{ id: '127.0.0.1:3003', url: 'http://127.0.0.1:3003' }]
 * off();
 * await discovery.close();
 * ```
 */
export function staticDiscovery(options: StaticDiscoveryOptions = {}): StaticDiscovery {
  const opts = parseOptions(schema, options, 'staticDiscovery');
  const lists = new Map<string, Instance[]>();
  for (const [service, list] of Object.entries(opts.services)) {
    lists.set(service, toInstances(list));
  }
  const table = new ServiceTable(
    opts.clock ?? systemClock,
    (service) => table.update(service, lists.get(service) ?? []),
    (_service, cause) => cause,
  );
  return {
    resolve: (service) => table.resolve(service),
    watch: (service, onChange) => table.watch(service, onChange),
    status: (service) => table.status(service),
    set(service, instances) {
      const parsed = parseOptions(listSchema, instances, `staticDiscovery.set(${service})`);
      const list = toInstances(parsed);
      lists.set(service, list);
      table.update(service, list);
    },
    delete(service) {
      lists.delete(service);
      table.update(service, []);
    },
    async close() {
      table.close();
    },
  };
}
