import type { Instance, Logger } from '@trellis/core';
import type { Registration } from './Registrar.js';

/** A registration that knows whether it is still in force (keep-alive loops check it). */
export interface TrackedRegistration extends Registration {
  readonly active: boolean;
}

/**
 * The registrations one registrar made. Each one is removed at most once, by its own
 * `deregister()` or by `closeAll()` when the registrar closes. Shared by etcd and Consul.
 */
export class Registrations {
  readonly #live = new Set<TrackedRegistration>();
  readonly #label: string;
  readonly #logger: Logger;

  constructor(label: string, logger: Logger) {
    this.#label = label;
    this.#logger = logger;
  }

  /** Tracks a registration whose `remove` (revoke the lease, deregister the service) runs once. */
  add(instance: Instance, remove: () => Promise<void>): TrackedRegistration {
    const live = this.#live;
    let active = true;
    const registration: TrackedRegistration = {
      instance,
      get active() {
        return active;
      },
      async deregister() {
        if (!active) return;
        active = false;
        live.delete(registration);
        await remove();
      },
    };
    live.add(registration);
    return registration;
  }

  /** Deregisters whatever is still registered; failures are logged, not thrown. */
  async closeAll(): Promise<void> {
    const results = await Promise.allSettled([...this.#live].map((r) => r.deregister()));
    for (const r of results) {
      if (r.status === 'rejected') {
        this.#logger.warn({ err: r.reason }, `${this.#label}: deregistration failed`);
      }
    }
  }
}
