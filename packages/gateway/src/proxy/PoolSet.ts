/**
 * The gateway's undici connection pools, one per upstream origin and pool settings. Pools
 * survive hot reloads when the new config still uses them (connections stay warm); a pool no
 * route uses any more is closed once the requests of the old config have finished.
 */
import { Pool } from 'undici';

/** Settings that make two pools different. */
export interface PoolSettings {
  readonly connections: number;
  readonly pipelining: number;
  readonly connectMs: number;
  readonly keepAliveMs: number;
}

export class PoolSet {
  readonly #pools = new Map<string, Pool>();

  /** The pool for `origin` with `settings`; `used` collects the keys a config generation uses. */
  get(origin: string, settings: PoolSettings, used: Set<string>): Pool {
    const key = `${origin}|${settings.connections}|${settings.pipelining}|${settings.connectMs}|${settings.keepAliveMs}`;
    used.add(key);
    let pool = this.#pools.get(key);
    if (pool === undefined) {
      pool = new Pool(origin, {
        connections: settings.connections,
        pipelining: settings.pipelining,
        connect: { timeout: settings.connectMs },
        keepAliveTimeout: settings.keepAliveMs,
        // Gateway timeouts are set per request; these are only the ceilings.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
      this.#pools.set(key, pool);
    }
    return pool;
  }

  /** Closes every pool whose key is in `keys` but not in `keep`. */
  async release(keys: Iterable<string>, keep: ReadonlySet<string>): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const key of keys) {
      if (keep.has(key)) continue;
      const pool = this.#pools.get(key);
      if (pool === undefined) continue;
      this.#pools.delete(key);
      closing.push(pool.close());
    }
    await Promise.all(closing);
  }

  /** Closes every pool; `force` destroys in-flight requests instead of waiting for them. */
  async closeAll(force: boolean): Promise<void> {
    const pools = [...this.#pools.values()];
    this.#pools.clear();
    await Promise.all(pools.map((p) => (force ? p.destroy() : p.close())));
  }
}
