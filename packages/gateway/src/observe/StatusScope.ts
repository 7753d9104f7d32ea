/**
 * The status registrations of one config generation. Components of a generation (balancers,
 * per-instance breakers, retry budgets, routes) register here; the scope forwards them to the
 * gateway's status registry only while the generation is the one in force. `reload()` deactivates
 * the old scope (its entries unregister) before the new one activates, so a name never clashes
 * (`StatusNameTakenError`) while the old generation drains. Breakers created on a request path
 * register lazily; a registration that fails is logged, never thrown into a request.
 *
 * Balancers register as `service` entries; the scope shows them as `upstream` entries whose
 * instances carry the state of their breaker (`<name>/<instance id>`).
 */
import type { Logger, StatusRegistry, StatusRegistryLike, StatusSource } from '@trellis/core';

/** A status name from a route id or instance id: `routes[0]` -> `routes.0`; others -> `_`. */
export function statusName(id: string): string {
  const s = id.replace(/\[(\d+)\]/g, '.$1').replace(/[^\w.:@/-]/g, '_');
  return s.length === 0 ? '_' : s.slice(0, 200);
}

interface Entry {
  readonly name: string;
  readonly source: StatusSource;
  off: (() => void) | undefined;
}

export class StatusScope implements StatusRegistryLike {
  readonly #target: StatusRegistry;
  readonly #logger: Logger;
  readonly #entries = new Set<Entry>();
  /** Breaker entries by name: the upstream snapshot looks each instance's breaker up. */
  readonly #breakers = new Map<string, Entry>();
  #active = false;

  constructor(target: StatusRegistry, logger: Logger) {
    this.#target = target;
    this.#logger = logger;
  }

  register(name: string, source: StatusSource): () => void {
    const entry: Entry = {
      name: statusName(name),
      source: source.kind === 'service' ? this.#upstream(statusName(name), source) : source,
      off: undefined,
    };
    this.#entries.add(entry);
    if (source.kind === 'breaker') this.#breakers.set(entry.name, entry);
    if (this.#active) this.#forward(entry);
    return () => {
      this.#entries.delete(entry);
      if (this.#breakers.get(entry.name) === entry) this.#breakers.delete(entry.name);
      entry.off?.();
      entry.off = undefined;
    };
  }

  /** Registers every entry with the gateway's registry (the generation is now in force). */
  activate(): void {
    if (this.#active) return;
    this.#active = true;
    for (const e of this.#entries) this.#forward(e);
  }

  /** Unregisters every entry (a newer generation takes over, or the gateway closes). */
  deactivate(): void {
    this.#active = false;
    for (const e of this.#entries) {
      e.off?.();
      e.off = undefined;
    }
  }

  #forward(entry: Entry): void {
    if (this.#target.closed) return;
    try {
      entry.off = this.#target.register(entry.name, entry.source);
    } catch (err) {
      this.#logger.warn({ err, name: entry.name }, 'gateway: status registration failed');
    }
  }

  /** A balancer's `service` source as an `upstream` entry with each instance's breaker state. */
  #upstream(name: string, source: StatusSource): StatusSource {
    const breakerOf = (id: string): string | undefined => {
      const state = this.#breakers.get(`${name}/${statusName(id)}`)?.source.snapshot().state;
      return typeof state === 'string' ? state : undefined;
    };
    return {
      ...source,
      kind: 'upstream',
      snapshot: () => {
        const snap = source.snapshot();
        const list = Array.isArray(snap.instances)
          ? (snap.instances as { id: string }[]).map((i) => {
              const breaker = breakerOf(i.id);
              return breaker === undefined ? i : { ...i, breaker };
            })
          : snap.instances;
        return { ...snap, instances: list };
      },
    };
  }
}
