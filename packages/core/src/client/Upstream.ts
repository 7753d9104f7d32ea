import { Pool } from 'undici';
import type { Pick } from '../discovery.js';

/** Connection settings shared by every pool a client opens. */
export interface PoolSettings {
  readonly connections: number | undefined;
  readonly keepAliveTimeoutMs: number;
}

/**
 * One origin the client talks to, with its own keep-alive undici `Pool`. A base URL may carry
 * a path prefix (`http://api:8080/v1`): it is prepended to every endpoint path.
 */
export class Upstream {
  readonly id: string;
  readonly origin: string;
  readonly prefix: string;
  readonly address: string;
  readonly port: number;
  readonly pool: Pool;

  constructor(id: string, baseUrl: string, settings: PoolSettings) {
    const url = new URL(baseUrl);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TypeError(`unsupported protocol "${url.protocol}" in ${baseUrl}`);
    }
    this.id = id;
    this.origin = url.origin;
    this.prefix = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
    this.address = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    this.port = url.port === '' ? (url.protocol === 'https:' ? 443 : 80) : Number(url.port);
    this.pool = new Pool(this.origin, {
      connections: settings.connections ?? null,
      keepAliveTimeout: settings.keepAliveTimeoutMs,
      pipelining: 1,
    });
  }
}

/** An upstream chosen for one attempt, with the balancer's pick when discovery chose it. */
export interface Lease {
  readonly upstream: Upstream;
  readonly pick: Pick | undefined;
}

/** Where the client sends requests: a fixed base URL, or a discovered service. */
export interface Target {
  /** A human name for errors and logs: the base URL or the service name. */
  readonly name: string;
  /** Chooses an upstream, avoiding `exclude` (instance ids already tried) when possible. */
  acquire(exclude: ReadonlySet<string> | undefined): Lease | Promise<Lease>;
  /** Closes every pool, letting in-flight requests finish. */
  close(): Promise<void>;
}

/** A fixed base URL: one pool, one lease, no allocation per call. */
export class StaticTarget implements Target {
  readonly name: string;
  readonly #lease: Lease;

  constructor(baseUrl: string, settings: PoolSettings) {
    this.name = baseUrl;
    this.#lease = { upstream: new Upstream(baseUrl, baseUrl, settings), pick: undefined };
  }

  acquire(): Lease {
    return this.#lease;
  }

  async close(): Promise<void> {
    await this.#lease.upstream.pool.close();
  }
}
