/**
 * The graceful shutdown sequence of one service: its hooks, the servers it follows, the signals
 * that start it and the `process.exit` that ends a signal-started one. The probes
 * (`HealthProbes`) only read its state.
 */
import type { Server } from 'node:http';
import { trace } from '@opentelemetry/api';
import type { Clock } from '../Clock.js';
import type { Logger } from '../Logger.js';
import { ServerTracker } from './ServerTracker.js';

/** Where the service is in its life. */
export type HealthState = 'starting' | 'ready' | 'draining' | 'stopping' | 'stopped';

/** A shutdown hook. Each gets `hookTimeoutMs`; a hook that throws is logged, not fatal. */
export type ShutdownHook = () => unknown;

export interface ShutdownSettings {
  readonly clock: Clock;
  readonly logger: Logger;
  readonly drainDelayMs: number;
  readonly shutdownTimeoutMs: number;
  readonly hookTimeoutMs: number;
  /** Signals that start the sequence (none when empty). */
  readonly signals: readonly string[];
  /** Call `process.exit` after a signal-started sequence. */
  readonly exit: boolean;
  /** Moves the service's state (owned by the caller, which emits the change). */
  readonly setState: (to: HealthState) => void;
}

type FlushableProvider = { forceFlush?: () => Promise<void> };

/**
 * Runs the sequence once: (1) readiness fails, (2) drain delay, (3) deregistration hooks,
 * (4) servers stop accepting and close idle keep-alives, (5) in-flight requests get up to
 * `shutdownTimeoutMs`, then what is left is dropped, (6) cleanup hooks in reverse order,
 * (7) flush hooks and the global OpenTelemetry provider.
 */
export class ShutdownSequence {
  readonly #s: ShutdownSettings;
  readonly #deregistrations: ShutdownHook[] = [];
  readonly #cleanups: ShutdownHook[] = [];
  readonly #flushes: ShutdownHook[] = [];
  readonly #trackers = new Map<Server, ServerTracker>();
  readonly #timers = new Set<ReturnType<Clock['setTimeout']>>();
  // Pending waits of the sequence; close() cuts them short so nothing hangs.
  readonly #wakers = new Set<() => void>();
  #closed = false;
  #running: Promise<void> | undefined;

  constructor(settings: ShutdownSettings) {
    this.#s = settings;
    for (const s of settings.signals) process.on(s as NodeJS.Signals, this.#onSignal);
  }

  get deregistrations(): ShutdownHook[] {
    return this.#deregistrations;
  }
  get cleanups(): ShutdownHook[] {
    return this.#cleanups;
  }
  get flushes(): ShutdownHook[] {
    return this.#flushes;
  }

  /** Follows a server's requests and connections. Returns detach. */
  attach(server: Server): () => void {
    if (this.#closed) return () => {};
    if (!this.#trackers.has(server)) this.#trackers.set(server, new ServerTracker(server));
    return () => {
      this.#trackers.get(server)?.detach();
      this.#trackers.delete(server);
    };
  }

  /** Requests in flight on attached servers. */
  get inFlight(): number {
    let n = 0;
    for (const t of this.#trackers.values()) n += t.inFlight;
    return n;
  }

  /** Runs the sequence once; later calls return the same promise. */
  shutdown(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#running ??= this.#sequence().then(() => undefined);
    return this.#running;
  }

  /** Removes signal handlers, detaches servers, cuts pending waits short. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const s of this.#s.signals) process.removeListener(s as NodeJS.Signals, this.#onSignal);
    for (const wake of [...this.#wakers]) wake();
    for (const t of this.#timers) this.#s.clock.clearTimeout(t);
    this.#timers.clear();
    for (const t of this.#trackers.values()) t.detach();
    this.#trackers.clear();
  }

  #onSignal = (signal: NodeJS.Signals): void => {
    const { logger, exit } = this.#s;
    if (this.#running !== undefined) {
      logger.warn({ signal }, 'health: second signal during shutdown');
      if (exit) process.exit(1);
      return;
    }
    logger.info({ signal }, 'health: shutdown signal received');
    this.#running = this.#sequence().then(
      (ok) => {
        if (exit) process.exit(ok ? 0 : 1);
      },
      (err: unknown) => {
        logger.error({ err }, 'health: shutdown failed');
        if (exit) process.exit(1);
      },
    );
  };

  async #sequence(): Promise<boolean> {
    const { drainDelayMs, shutdownTimeoutMs, hookTimeoutMs, logger, setState } = this.#s;
    let ok = true;
    // 1. Readiness fails at once (the probes read the state).
    setState('draining');
    // 2. Drain delay, so load balancers see the failing readiness probe and stop routing here.
    //    Skipped when every attached server has already stopped listening.
    const listening = [...this.#trackers.keys()].some((s) => s.listening);
    if (drainDelayMs > 0 && (this.#trackers.size === 0 || listening)) {
      await this.#sleep(drainDelayMs);
    }
    setState('stopping');
    // 3. Deregister from discovery.
    ok = (await this.#runHooks('deregistration', [...this.#deregistrations])) && ok;
    // 4. Stop accepting, close idle keep-alives, mark in-flight responses `Connection: close`.
    const list = [...this.#trackers.values()];
    const serversClosed = Promise.all(list.map((t) => t.stopAccepting()));
    // 5. Wait for in-flight requests up to the deadline, then drop what is left.
    const drained = await this.#within(Promise.all(list.map((t) => t.idle())), shutdownTimeoutMs);
    if (!drained) {
      ok = false;
      const inFlight = list.reduce((n, t) => n + t.inFlight, 0);
      logger.warn(
        { inFlight, timeoutMs: shutdownTimeoutMs },
        'health: in-flight requests did not finish in time; closing their connections',
      );
      for (const t of list) t.destroyAll();
    }
    // Whatever is left is dropped before the cleanup hooks run: idle sockets, and sockets
    // holding a half-sent request (not in flight yet, so not waited for), which would otherwise
    // be answered after the cleanup hooks (the database pool may be gone).
    for (const t of list) t.dropRemaining();
    await this.#within(serversClosed, hookTimeoutMs);
    // 6. Cleanup hooks, last registered first.
    ok = (await this.#runHooks('cleanup', [...this.#cleanups].reverse())) && ok;
    // 7. Flush telemetry.
    const provider = trace.getTracerProvider() as FlushableProvider & {
      getDelegate?: () => FlushableProvider;
    };
    const delegate = provider.getDelegate?.() ?? provider;
    const flushGlobal: ShutdownHook[] =
      typeof delegate.forceFlush === 'function' ? [() => delegate.forceFlush?.()] : [];
    ok = (await this.#runHooks('flush', [...this.#flushes, ...flushGlobal])) && ok;
    setState('stopped');
    return ok;
  }

  /** Runs hooks in order; returns false if one threw or timed out. */
  async #runHooks(kind: string, hooks: readonly ShutdownHook[]): Promise<boolean> {
    const { hookTimeoutMs, logger } = this.#s;
    let ok = true;
    for (const hook of hooks) {
      try {
        const done = await this.#within(Promise.resolve().then(hook), hookTimeoutMs);
        if (!done) {
          ok = false;
          logger.error({ kind, timeoutMs: hookTimeoutMs }, `health: ${kind} hook timed out`);
        }
      } catch (err) {
        ok = false;
        logger.error({ kind, err }, `health: ${kind} hook failed`);
      }
    }
    return ok;
  }

  /** Resolves after `ms` on the clock, or at once when close() is called. */
  #sleep(ms: number): Promise<void> {
    return this.#within(new Promise<never>(() => {}), ms).then(() => undefined);
  }

  /** True when `p` fulfils in time, false on timeout or close(); rejects when `p` does. */
  #within(p: Promise<unknown>, ms: number): Promise<boolean> {
    const clock = this.#s.clock;
    return new Promise((resolve, reject) => {
      if (this.#closed) {
        p.catch(() => {});
        resolve(false);
        return;
      }
      let settled = false;
      const settle = () => {
        if (settled) return false;
        settled = true;
        this.#wakers.delete(wake);
        clock.clearTimeout(timer);
        this.#timers.delete(timer);
        return true;
      };
      const wake = () => {
        if (settle()) resolve(false);
      };
      const timer = clock.setTimeout(wake, ms);
      this.#timers.add(timer);
      this.#wakers.add(wake);
      p.then(
        () => {
          if (settle()) resolve(true);
        },
        (err: unknown) => {
          if (settle()) reject(err);
        },
      );
    });
  }
}
