import type { Event } from '../Event.js';

/**
 * What kind of component a status entry is. The admin page groups entries by kind; other kinds
 * are shown as plain JSON.
 */
export type StatusKind =
  | 'breaker'
  | 'retry'
  | 'budget'
  | 'bulkhead'
  | 'rateLimit'
  | 'adaptiveLimit'
  | 'service'
  | 'health'
  | 'client'
  | 'route'
  | 'upstream'
  | 'relay';

/** How much an event matters to an operator. */
export type StatusSeverity = 'info' | 'warn' | 'error';

/** An event a component reports: a breaker opened, an instance was ejected, a budget ran dry. */
export interface StatusEventInit {
  /** Machine-readable type, e.g. `state-change`, `ejected`, `restored`, `budget-exhausted`. */
  readonly type: string;
  readonly severity?: StatusSeverity;
  /** One line for a person, e.g. `closed -> open (consecutive-failures)`. */
  readonly message: string;
  /** Extra JSON fields (instance id, from/to, reason, ...). */
  readonly data?: Readonly<Record<string, unknown>>;
}

/** An event as the registry hands it out: numbered, timed and named after its source. */
export interface StatusEvent extends StatusEventInit {
  /** Increases by one per event of this registry. */
  readonly seq: number;
  /** Epoch milliseconds. */
  readonly time: number;
  /** The registered name of the component that reported it. */
  readonly source: string;
  readonly kind: string;
  readonly severity: StatusSeverity;
}

/** One instance of a `service` entry, as the admin API and page show it. */
export interface InstanceStatus {
  readonly id: string;
  readonly url: string;
  readonly weight: number;
  /** Requests in flight now. */
  readonly inflight: number;
  /** Peak-EWMA (or last) latency in ms; absent before the first answer. */
  readonly latencyMs?: number;
  /** Requests finished since the balancer first saw the instance (the page derives a rate). */
  readonly requests: number;
  readonly failures: number;
  readonly ejected: boolean;
  /** Why it is ejected: `consecutive-failures`, `failure-rate`, `manual`. */
  readonly ejectionReason?: string;
  /** Epoch ms when the ejection ends; absent for a manual ejection (until restored). */
  readonly ejectedUntil?: number;
  readonly timesEjected: number;
  /** Breaker state of the instance, when a keyed breaker guards it. */
  readonly breaker?: 'closed' | 'open' | 'half-open';
}

/**
 * The contract a live component implements to appear in a status registry. `@trellis/resilience`
 * and `@trellis/discovery` implement it, so core never imports them. Only `kind` and
 * `snapshot` are required; controls are optional and the admin API answers 404 for a control the
 * named entry lacks.
 */
export interface StatusSource {
  readonly kind: StatusKind | (string & {});
  /** A JSON-serialisable picture of the component now. Called per snapshot: keep it cheap. */
  snapshot(): Record<string, unknown>;
  /** State changes, ejections, exhaustion... The registry subscribes while the entry is registered. */
  readonly events?: Event<StatusEventInit>;
  /** Breakers: hold open until `reset()`. */
  isolate?(): void;
  /** Breakers: close and forget the counts (ends an isolation). */
  reset?(): void;
  /** Services: eject an instance by id until restored; false when the id is unknown. */
  eject?(instanceId: string): boolean;
  /** Services: end an instance's ejection; false when the id is unknown. */
  restore?(instanceId: string): boolean;
}

/** The option a component takes to register itself: `{ name, status }`. */
export interface StatusRegistrable {
  /** The name it registers under (keyed breakers append `/key`). */
  name?: string;
  /** The service's status registry (`createStatusRegistry()`). */
  status?: StatusRegistryLike;
}

/** The part of a status registry a component needs to register itself. */
export interface StatusRegistryLike {
  register(name: string, source: StatusSource): () => void;
}
