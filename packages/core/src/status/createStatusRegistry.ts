import { z } from 'zod';
import { Emitter, type Event } from '../Event.js';
import { StatusNameTakenError } from '../errors.js';
import type { Health } from '../health/createHealth.js';
import { parseOptions } from '../options.js';
import type {
  StatusEvent,
  StatusEventInit,
  StatusRegistryLike,
  StatusSource,
} from './StatusSource.js';

/** A registered component in a snapshot: its name and kind, then its own fields. */
export interface StatusEntry {
  readonly name: string;
  readonly kind: string;
  readonly [field: string]: unknown;
}

/** `GET /admin/status`: everything registered, at one moment. */
export interface StatusDocument {
  /** The service's name (the registry's `service` option), when given. */
  readonly service?: string;
  /** Epoch milliseconds. */
  readonly time: number;
  /** True once the registry is closing (the service shuts down); controls answer 409. */
  readonly closing: boolean;
  /** Entries sorted by kind, then name. */
  readonly components: readonly StatusEntry[];
  /** The most recent events, oldest first (at most `keepEvents`). */
  readonly events: readonly StatusEvent[];
}

export interface StatusRegistryOptions {
  /** The service's name, shown by the page's header. */
  service?: string;
  /** How many recent events the registry keeps for snapshots and new page loads. Default 200. */
  keepEvents?: number;
  /** Epoch milliseconds; default `Date.now` (tests may pass a fixed one). */
  now?: () => number;
  /**
   * The service's health: registered as `health`, its shutdown steps (draining, stopping,
   * stopped) become events, controls answer 409 from `draining` on, and the registry closes
   * (ending the event streams) when it reaches `stopped`.
   */
  health?: Health;
  /** How often the health entry re-runs `health.report()` for its check results. Default 5000 ms. */
  healthRefreshMs?: number;
}

/** The live registry of a service's components; see {@link createStatusRegistry}. */
export interface StatusRegistry extends StatusRegistryLike {
  /**
   * Registers `source` under `name` and returns the function that unregisters it (components
   * call it from their `close()`). Names are unique per kind (a service and its breaker may
   * share one); throws `StatusNameTakenError` when the name is taken.
   */
  register(name: string, source: StatusSource): () => void;
  /** The entry registered under `name` (of `kind`, when given; otherwise the first kind found). */
  get(name: string, kind?: string): StatusSource | undefined;
  /** Every registered name. */
  names(): string[];
  /** Everything registered, at one moment. A source whose snapshot throws shows `error`. */
  snapshot(): StatusDocument;
  /** Every event of every registered component, plus the registry's own (`shutdown`, ...). */
  readonly onEvent: Event<StatusEvent>;
  /** Reports an event on behalf of `source` (e.g. shutdown steps from your own code). */
  emit(source: string, event: StatusEventInit, kind?: string): void;
  /** True once `close()` was called. */
  readonly closing: boolean;
  /** True once `close()` has run (event streams are over). */
  readonly closed: boolean;
  /** Fires once, when `close()` is called: the admin API ends its event streams. */
  readonly onClose: Event<void>;
  /** Marks the registry closing, reports it, ends the event streams and drops every entry. */
  close(): void;
}

const optionsSchema = z.strictObject({
  service: z.string().min(1).max(200).optional(),
  keepEvents: z.number().int().min(0).max(100_000).default(200),
  now: z.custom<() => number>((v) => typeof v === 'function', 'expected a function').optional(),
  health: z
    .custom<Health>(
      (v) =>
        typeof v === 'object' && v !== null && typeof (v as Health).onStateChange === 'function',
      'must be a Health from createHealth()',
    )
    .optional(),
  healthRefreshMs: z.number().int().min(100).max(3_600_000).default(5000),
});

const shuttingDown = new Set(['draining', 'stopping', 'stopped']);

/** A status name: printable, no spaces, at most 200 characters; `/` separates keyed parts. */
export const STATUS_NAME = /^[\w.:@/-]{1,200}$/;

const kindOrder = [
  'service',
  'upstream',
  'route',
  'breaker',
  'retry',
  'budget',
  'bulkhead',
  'rateLimit',
  'adaptiveLimit',
  'client',
  'health',
  'relay',
];

function kindRank(kind: string): number {
  const i = kindOrder.indexOf(kind);
  return i === -1 ? kindOrder.length : i;
}

/**
 * Creates the registry that a service's live components register with, by name, so the admin
 * API and the status page can show and control them. There is no process-wide default: create one
 * per service and pass it as the `status` option of each component.
 *
 * @example
 * ```ts
 * import { createStatusRegistry } from '@trellis/core';
 * const status = createStatusRegistry({ service: 'orders' });
 * const off = status.register('cache', { kind: 'health', snapshot: () => ({ ok: true }) });
 * console.log(status.snapshot().components); // [{ name: 'cache', kind: 'health', ok: true }]
 * off();
 * ```
 */
export function createStatusRegistry(options: StatusRegistryOptions = {}): StatusRegistry {
  const opts = parseOptions(optionsSchema, options, 'createStatusRegistry');
  const now = opts.now ?? Date.now;
  const entries = new Map<
    string,
    { name: string; source: StatusSource; off: (() => void) | undefined }
  >();
  const events = new Emitter<StatusEvent>();
  const closeEmitter = new Emitter<void>();
  const recent: StatusEvent[] = [];
  let seq = 0;
  let closing = false;

  const emit = (source: string, kind: string, init: StatusEventInit): void => {
    const event: StatusEvent = {
      type: init.type,
      message: init.message,
      ...(init.data !== undefined && { data: init.data }),
      severity: init.severity ?? 'info',
      seq: ++seq,
      time: now(),
      source,
      kind,
    };
    if (opts.keepEvents > 0) {
      recent.push(event);
      if (recent.length > opts.keepEvents) recent.splice(0, recent.length - opts.keepEvents);
    }
    events.emit(event);
  };

  const registry: StatusRegistry = {
    register(name, source) {
      if (typeof name !== 'string' || !STATUS_NAME.test(name)) {
        throw new StatusNameTakenError(
          `status: invalid name ${JSON.stringify(name)}: use 1-200 letters, digits and _ . : @ / -`,
          { name: String(name) },
        );
      }
      const kind = source.kind;
      const key = `${kind}\u0000${name}`;
      if (entries.has(key)) {
        throw new StatusNameTakenError(
          `status: a ${kind} named "${name}" is registered already; give each component its own name`,
          { name },
        );
      }
      const off = source.events?.((e) => emit(name, kind, e));
      const entry = { name, source, off };
      entries.set(key, entry);
      return () => {
        if (entries.get(key) !== entry) return;
        entries.delete(key);
        entry.off?.();
      };
    },
    get(name, kind) {
      if (kind !== undefined) return entries.get(`${kind}\u0000${name}`)?.source;
      for (const e of entries.values()) if (e.name === name) return e.source;
      return undefined;
    },
    names: () => [...entries.values()].map((e) => e.name),
    snapshot() {
      const components: StatusEntry[] = [];
      for (const { name, source } of entries.values()) {
        let fields: Record<string, unknown>;
        try {
          fields = source.snapshot();
        } catch (err) {
          fields = { error: err instanceof Error ? err.message : 'snapshot failed' };
        }
        components.push({ ...fields, name, kind: source.kind });
      }
      components.sort((a, b) => kindRank(a.kind) - kindRank(b.kind) || cmp(a.name, b.name));
      return {
        ...(opts.service !== undefined && { service: opts.service }),
        time: now(),
        closing,
        components,
        events: recent.slice(),
      };
    },
    onEvent: events.event,
    emit(source, event, kind) {
      emit(source, kind ?? registry.get(source)?.kind ?? 'service', event);
    },
    get closing() {
      return closing || (opts.health !== undefined && shuttingDown.has(opts.health.state));
    },
    get closed() {
      return closing;
    },
    onClose: closeEmitter.event,
    close() {
      if (closing) return;
      closing = true;
      emit(opts.service ?? 'registry', 'service', {
        type: 'shutdown',
        severity: 'warn',
        message: 'status registry closing: the service is shutting down',
      });
      closeEmitter.emit();
      closeEmitter.clear();
      for (const entry of entries.values()) entry.off?.();
      events.clear();
    },
  };
  const health = opts.health;
  if (health !== undefined) {
    // Check results come from health.report(), run in the background at most every
    // `healthRefreshMs` when a snapshot is taken (a snapshot is synchronous and must stay
    // cheap); a check whose status changes is reported as an event.
    let checks: Record<string, string> = {};
    let refreshedAt = Number.NEGATIVE_INFINITY;
    let refreshing = false;
    let onCheck: ((e: StatusEventInit) => void) | undefined;
    const refresh = () => {
      if (refreshing || now() - refreshedAt < opts.healthRefreshMs || closing) return;
      refreshing = true;
      refreshedAt = now();
      health.report().then(
        (report) => {
          refreshing = false;
          const next: Record<string, string> = {};
          for (const [key, outcomes] of Object.entries(report.body.checks ?? {})) {
            const status = outcomes[0]?.status ?? 'pass';
            next[key] = status;
            const before = checks[key];
            if (before !== undefined && before !== status) {
              onCheck?.({
                type: 'check',
                severity: status === 'fail' ? 'error' : status === 'warn' ? 'warn' : 'info',
                message: `${key}: ${before} -> ${status}`,
                data: { check: key, from: before, to: status },
              });
            }
          }
          checks = next;
        },
        () => {
          refreshing = false;
        },
      );
    };
    registry.register('health', {
      kind: 'health',
      snapshot: () => {
        refresh();
        return { state: health.state, inFlight: health.inFlight, checks };
      },
      events: (listener) => {
        onCheck = listener;
        const off = health.onStateChange(({ from, to }) => {
          listener({
            type: shuttingDown.has(to) ? 'shutdown' : 'state-change',
            severity: shuttingDown.has(to) ? 'warn' : 'info',
            message: `${from} -> ${to}`,
            data: { from, to },
          });
          if (to === 'stopped') queueMicrotask(() => registry.close());
        });
        return () => {
          onCheck = undefined;
          off();
        };
      },
    });
    refresh();
  }
  return registry;
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
