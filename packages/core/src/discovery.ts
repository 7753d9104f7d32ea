import type { FaultKind } from './TrellisError.js';
/** One reachable copy of a service. */
export interface Instance {
  /** Stable identity across updates (e.g. `host:port`); balancers key their state by it. */
  readonly id: string;
  /** Base URL, e.g. `http://10.0.0.7:8080`. */
  readonly url: string;
  /** Relative weight for weighted balancers; default 1. */
  readonly weight?: number;
  readonly metadata?: Readonly<Record<string, string>>;
}

/** Finds the instances of a service. Implemented by `@trellis/discovery`. */
export interface Resolver {
  /** The current instances (from cache when the resolver keeps one). */
  resolve(service: string): Promise<Instance[]>;
  /** Calls `onChange` with the full instance list on every change; returns an unsubscribe. */
  watch(service: string, onChange: (instances: Instance[]) => void): () => void;
  /** Stops every watch and releases timers and sockets. */
  close(): Promise<void>;
}

/** How a request that used a picked instance ended; feeds load- and failure-aware balancers. */
export interface PickOutcome {
  /** False for connect errors, resets, timeouts and 5xx answers: the outlier detector counts it. */
  readonly ok: boolean;
  /**
   * Whose fault a failed request was (`classifyFault`). When given and not `upstream` (the
   * caller's abort or deadline, a request it built wrong, a shed answer), the outlier detector
   * counts the request neither way.
   */
  readonly fault?: FaultKind;
  /** The error a failed request ended with; classified with `classifyFault` when `fault` is absent. */
  readonly error?: unknown;
  /** Time from pick to response headers (or failure), in milliseconds. */
  readonly durationMs: number;
}

/** A picked instance. Call `done()` exactly once when the request ends. */
export interface Pick {
  readonly instance: Instance;
  done(outcome: PickOutcome): void;
}

export interface PickOptions {
  /** Sticky key for hashing balancers (user id, session id). */
  readonly key?: string;
  /** Instance ids to avoid (already tried by this request); ignored if nothing else is left. */
  readonly exclude?: ReadonlySet<string>;
}

/** Chooses an instance per request. Implemented by `@trellis/discovery` (`peakEwma()`, ...). */
export interface Balancer {
  /** Returns undefined when `instances` is empty or every instance is ejected. */
  pick(instances: readonly Instance[], opts?: PickOptions): Pick | undefined;
}
