import type { Balancer, Instance, Pick, Resolver } from '../discovery.js';
import { NoInstanceError } from '../errors.js';
import type { Logger } from '../Logger.js';
import type { Lease, PoolSettings, Target } from './Upstream.js';
import { Upstream } from './Upstream.js';

/**
 * A service found through a {@link Resolver} and chosen per attempt by a {@link Balancer}.
 * Keeps one pool per instance; when an instance disappears its pool is drained (closed
 * gracefully: in-flight requests finish, no new ones start), never cut.
 */
export class ServiceTarget implements Target {
  readonly name: string;
  readonly #resolver: Resolver;
  readonly #balancer: Balancer;
  readonly #settings: PoolSettings;
  readonly #logger: Logger;
  readonly #upstreams = new Map<string, Upstream>();
  readonly #draining = new Set<Promise<void>>();
  #instances: readonly Instance[] | undefined;
  #resolving: Promise<void> | undefined;
  #unwatch: (() => void) | undefined;
  #closed = false;

  constructor(
    service: string,
    resolver: Resolver,
    balancer: Balancer,
    settings: PoolSettings,
    logger: Logger,
  ) {
    this.name = service;
    this.#resolver = resolver;
    this.#balancer = balancer;
    this.#settings = settings;
    this.#logger = logger;
    this.#unwatch = resolver.watch(service, (instances) => this.#update(instances));
  }

  /** Instances currently known (empty until the first resolve or watch update). */
  get instances(): readonly Instance[] {
    return this.#instances ?? [];
  }

  acquire(exclude: ReadonlySet<string> | undefined): Lease | Promise<Lease> {
    if (this.#instances === undefined) return this.#resolveThenAcquire(exclude);
    return this.#pick(this.#instances, exclude);
  }

  async #resolveThenAcquire(exclude: ReadonlySet<string> | undefined): Promise<Lease> {
    this.#resolving ??= this.#resolver.resolve(this.name).then(
      (instances) => {
        this.#resolving = undefined;
        // A watch update that arrived meanwhile is newer than this answer.
        if (this.#instances === undefined) this.#update(instances);
      },
      (err: unknown) => {
        this.#resolving = undefined;
        throw err;
      },
    );
    await this.#resolving;
    return this.#pick(this.#instances ?? [], exclude);
  }

  #pick(instances: readonly Instance[], exclude: ReadonlySet<string> | undefined): Lease {
    const pick = this.#balancer.pick(instances, exclude === undefined ? undefined : { exclude });
    const upstream = pick === undefined ? undefined : this.#upstreams.get(pick.instance.id);
    if (pick === undefined || upstream === undefined) {
      pick?.done({ ok: false, durationMs: 0 });
      throw new NoInstanceError(`no instance of service "${this.name}" is available`, {
        service: this.name,
      });
    }
    return { upstream, pick };
  }

  #update(instances: readonly Instance[]): void {
    if (this.#closed) return;
    const next = new Map<string, Upstream>();
    const kept: Instance[] = [];
    for (const instance of instances) {
      if (next.has(instance.id)) continue;
      const existing = this.#upstreams.get(instance.id);
      if (existing !== undefined && existing.id === instance.id && sameUrl(existing, instance)) {
        next.set(instance.id, existing);
        kept.push(instance);
        continue;
      }
      try {
        next.set(instance.id, new Upstream(instance.id, instance.url, this.#settings));
        kept.push(instance);
      } catch (err) {
        this.#logger.warn({ err, service: this.name, instance }, 'ignoring instance with bad url');
      }
    }
    for (const [id, upstream] of this.#upstreams) {
      if (next.get(id) !== upstream) this.#drain(upstream);
    }
    this.#upstreams.clear();
    for (const [id, upstream] of next) this.#upstreams.set(id, upstream);
    this.#instances = kept;
    this.#logger.debug(
      { service: this.name, instances: kept.map((i) => i.id) },
      'service instances changed',
    );
  }

  #drain(upstream: Upstream): void {
    const closing = upstream.pool.close().then(
      () => {
        this.#draining.delete(closing);
      },
      (err: unknown) => {
        this.#draining.delete(closing);
        this.#logger.warn({ err, service: this.name, instance: upstream.id }, 'pool drain failed');
      },
    );
    this.#draining.add(closing);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unwatch?.();
    this.#unwatch = undefined;
    const closing = [...this.#draining];
    for (const upstream of this.#upstreams.values()) closing.push(upstream.pool.close());
    this.#upstreams.clear();
    await Promise.all(closing);
  }
}

function sameUrl(upstream: Upstream, instance: Instance): boolean {
  try {
    const url = new URL(instance.url);
    const prefix = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
    return url.origin === upstream.origin && prefix === upstream.prefix;
  } catch {
    return false;
  }
}

/** The default balancer: round robin, skipping excluded instances while others remain. */
export function roundRobinBalancer(): Balancer {
  let next = 0;
  const done = () => {};
  return {
    pick(instances, opts) {
      const n = instances.length;
      if (n === 0) return undefined;
      const exclude = opts?.exclude;
      for (let i = 0; i < n; i++) {
        const instance = instances[(next + i) % n] as Instance;
        if (exclude === undefined || !exclude.has(instance.id) || i === n - 1) {
          next = (next + i + 1) % n;
          const pick: Pick = { instance, done };
          return pick;
        }
      }
      return undefined;
    },
  };
}
