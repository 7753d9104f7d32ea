import { Counter, Gauge, type Registry, type RegistryContentType } from 'prom-client';
import type { OutboxStats } from './createOutbox.js';

/** Per registry: the relays running on it, label -> how to read their outbox's stats. */
const relaysOf = new WeakMap<object, Map<string, () => Promise<OutboxStats | undefined>>>();

/** Reads stats at most once at a time; a failed read gives the last good one. */
function sharedRead(stats: () => Promise<OutboxStats>): () => Promise<OutboxStats | undefined> {
  let last: OutboxStats | undefined;
  let reading: Promise<OutboxStats | undefined> | undefined;
  return () => {
    reading ??= stats()
      .then(
        (s) => (last = s),
        () => last,
      )
      .finally(() => {
        setImmediate(() => {
          reading = undefined;
        });
      });
    return reading;
  };
}

/**
 * The outbox's Prometheus metrics. The gauges read the table when scraped (one query per
 * scrape); the counters count what this process's relays did.
 */
export class OutboxMetrics {
  readonly delivered: Counter<'topic'>;
  readonly failed: Counter<'topic'>;
  readonly deadLettered: Counter<'topic'>;
  readonly #relays: Map<string, () => Promise<OutboxStats | undefined>>;
  readonly #read: () => Promise<OutboxStats | undefined>;

  constructor(
    registry: Registry<RegistryContentType>,
    table: string,
    stats: () => Promise<OutboxStats>,
  ) {
    const read = sharedRead(stats);
    this.#read = read;
    let relays = relaysOf.get(registry);
    if (relays === undefined) {
      relays = new Map();
      relaysOf.set(registry, relays);
    }
    this.#relays = relays;
    const existing = registry.getSingleMetric('trellis_outbox_delivered_total');
    if (existing !== undefined) {
      // A second outbox on the same registry shares the counters.
      this.delivered = existing as Counter<'topic'>;
      this.failed = registry.getSingleMetric('trellis_outbox_failed_total') as Counter<'topic'>;
      this.deadLettered = registry.getSingleMetric(
        'trellis_outbox_dead_lettered_total',
      ) as Counter<'topic'>;
      return;
    }
    // The gauges share one query per scrape and outbox.
    const running = relays;
    new Gauge({
      name: 'trellis_outbox_pending',
      help: `Messages in the outbox (${table}) not yet delivered nor dead-lettered.`,
      registers: [registry],
      async collect() {
        const s = await read();
        if (s !== undefined) this.set(s.pending);
      },
    });
    new Gauge({
      name: 'trellis_outbox_oldest_pending_age_seconds',
      help: 'Age of the oldest pending outbox message (0 when none).',
      registers: [registry],
      async collect() {
        const s = await read();
        if (s !== undefined) this.set(s.oldestPendingMs / 1000);
      },
    });
    new Gauge({
      name: 'trellis_outbox_lag_seconds',
      help: 'Per running relay: age of the oldest message its outbox has not delivered yet (0 when none).',
      labelNames: ['relay'],
      registers: [registry],
      async collect() {
        this.reset();
        await Promise.all(
          [...running].map(async ([relay, readStats]) => {
            const s = await readStats();
            if (s !== undefined) this.set({ relay }, s.oldestPendingMs / 1000);
          }),
        );
      },
    });
    this.delivered = new Counter({
      name: 'trellis_outbox_delivered_total',
      help: 'Outbox messages delivered by this process.',
      labelNames: ['topic'],
      registers: [registry],
    });
    this.failed = new Counter({
      name: 'trellis_outbox_failed_total',
      help: 'Outbox delivery attempts that failed (each is retried later or dead-lettered).',
      labelNames: ['topic'],
      registers: [registry],
    });
    this.deadLettered = new Counter({
      name: 'trellis_outbox_dead_lettered_total',
      help: 'Outbox messages dead-lettered after maxAttempts.',
      labelNames: ['topic'],
      registers: [registry],
    });
  }

  /** Adds a running relay to `trellis_outbox_lag_seconds`; the returned function removes it. */
  addRelay(label: string): () => void {
    const read = this.#read;
    this.#relays.set(label, read);
    return () => {
      if (this.#relays.get(label) === read) this.#relays.delete(label);
    };
  }
}
