import { type Clock, Emitter, type Event, type Instance, ShutdownError } from '@trellis/core';
import { sameInstances } from './instances.js';

/** What a resolver knows about one service. */
export interface ServiceStatus {
  readonly service: string;
  /** The instances served now (the last known good list while the backend fails). */
  readonly instances: readonly Instance[];
  /** True while the last refresh failed and the list may be out of date. */
  readonly stale: boolean;
  /** Milliseconds since the list was last confirmed by the backend; 0 when fresh. */
  readonly staleForMs: number;
  /** Clock time (`clock.now()`) of the last successful refresh; undefined before the first. */
  readonly updatedAt: number | undefined;
  /** The error of the last failed refresh, while stale. */
  readonly error: Error | undefined;
}

/** Emitted when a refresh fails and a resolver keeps serving its last known good list. */
export interface StaleEvent {
  readonly service: string;
  readonly error: Error;
  /** Milliseconds since the list was last confirmed; the list may be this old. */
  readonly staleForMs: number;
  /** How many instances are still being served from the last known good list. */
  readonly instances: number;
}

interface Entry {
  instances: Instance[] | undefined;
  /** A settled promise of `instances`, reused by every `resolve()` (no allocation per call). */
  resolved: Promise<Instance[]> | undefined;
  updatedAt: number | undefined;
  error: Error | undefined;
  waiters: { resolve(v: Instance[]): void; reject(e: unknown): void }[];
  readonly changes: Emitter<Instance[]>;
}

/**
 * The cache every resolver builds on: per service the current list, its freshness, the watchers,
 * and the callers waiting for a first answer. Backends call `update` and `fail`.
 * @internal
 */
export class ServiceTable {
  readonly #entries = new Map<string, Entry>();
  readonly #stale = new Emitter<StaleEvent>();
  readonly #clock: Clock;
  readonly #start: (service: string) => void;
  readonly #unavailable: (service: string, cause: Error) => Error;
  #closed = false;

  readonly onStale: Event<StaleEvent> = this.#stale.event;

  constructor(
    clock: Clock,
    start: (service: string) => void,
    unavailable: (service: string, cause: Error) => Error,
  ) {
    this.#clock = clock;
    this.#start = start;
    this.#unavailable = unavailable;
  }

  get closed(): boolean {
    return this.#closed;
  }

  services(): string[] {
    return [...this.#entries.keys()];
  }

  #entry(service: string): Entry {
    let e = this.#entries.get(service);
    if (e === undefined) {
      e = {
        instances: undefined,
        resolved: undefined,
        updatedAt: undefined,
        error: undefined,
        waiters: [],
        changes: new Emitter(),
      };
      this.#entries.set(service, e);
      this.#start(service);
    }
    return e;
  }

  resolve(service: string): Promise<Instance[]> {
    if (this.#closed) return Promise.reject(new ShutdownError('discovery is closed'));
    const e = this.#entry(service);
    if (e.resolved !== undefined) return e.resolved;
    if (e.error !== undefined) return Promise.reject(this.#unavailable(service, e.error));
    return new Promise((resolve, reject) => {
      e.waiters.push({ resolve, reject });
    });
  }

  watch(service: string, onChange: (instances: Instance[]) => void): () => void {
    if (this.#closed) throw new ShutdownError('discovery is closed');
    const e = this.#entry(service);
    const off = e.changes.event(onChange);
    let subscribed = true;
    const current = e.instances;
    if (current !== undefined) {
      // Deliver the current list too, but never synchronously from inside watch(), and not if
      // it changed (the change was delivered) or the caller unsubscribed meanwhile.
      queueMicrotask(() => {
        if (subscribed && e.instances === current && !this.#closed) onChange(current);
      });
    }
    return () => {
      subscribed = false;
      off();
    };
  }

  status(service: string): ServiceStatus {
    const e = this.#entries.get(service);
    const now = this.#clock.now();
    const stale = e?.error !== undefined;
    return {
      service,
      instances: e?.instances ?? [],
      stale,
      staleForMs: stale && e?.updatedAt !== undefined ? now - e.updatedAt : 0,
      updatedAt: e?.updatedAt,
      error: e?.error,
    };
  }

  /** The current list, without starting anything. */
  current(service: string): Instance[] | undefined {
    return this.#entries.get(service)?.instances;
  }

  /** Records a successful refresh; notifies watchers when the list changed. */
  update(service: string, next: Instance[]): void {
    if (this.#closed) return;
    const e = this.#entries.get(service);
    if (e === undefined) return;
    e.updatedAt = this.#clock.now();
    e.error = undefined;
    const changed = e.instances === undefined || !sameInstances(e.instances, next);
    if (changed) {
      Object.freeze(next);
      e.instances = next;
      e.resolved = Promise.resolve(next);
    }
    const waiters = e.waiters;
    if (waiters.length > 0) {
      e.waiters = [];
      for (const w of waiters) w.resolve(e.instances!);
    }
    if (changed) e.changes.emit(e.instances!);
  }

  /** Records a failed refresh: keeps the last known good list and reports staleness. */
  fail(service: string, error: Error): void {
    if (this.#closed) return;
    const e = this.#entries.get(service);
    if (e === undefined) return;
    e.error = error;
    const waiters = e.waiters;
    if (waiters.length > 0) {
      e.waiters = [];
      const err = this.#unavailable(service, error);
      for (const w of waiters) w.reject(err);
    }
    const now = this.#clock.now();
    this.#stale.emit({
      service,
      error,
      staleForMs: e.updatedAt === undefined ? 0 : now - e.updatedAt,
      instances: e.instances?.length ?? 0,
    });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = new ShutdownError('discovery is closed');
    for (const e of this.#entries.values()) {
      for (const w of e.waiters) w.reject(err);
      e.waiters = [];
      e.changes.clear();
    }
    this.#stale.clear();
  }
}
