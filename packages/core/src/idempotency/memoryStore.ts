import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { type Clock, systemClock } from '../Clock.js';
import { IdempotencyStoreError } from '../errors.js';
import { parseOptions } from '../options.js';
import type {
  ClaimOptions,
  ClaimResult,
  CompleteOptions,
  IdempotencyStore,
  RecordedAnswer,
  RecordId,
} from './IdempotencyStore.js';

export interface MemoryStoreOptions {
  /** Most records kept; the oldest finished or expired ones make room. Default 10 000. */
  maxKeys?: number;
  clock?: Clock;
}

const schema = z.strictObject({
  maxKeys: z.number().int().positive().max(10_000_000).default(10_000),
  clock: z
    .custom<Clock>(
      (v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function',
      'must be a Clock',
    )
    .optional(),
});

interface Entry {
  fingerprint: string;
  /** Set while in progress. */
  token: string | undefined;
  answer: RecordedAnswer | undefined;
  /** Lease end (in progress) or expiry (completed), on the store's clock. */
  until: number;
}

/**
 * The embedded default store: one process, bounded, no timer per key. Records expire lazily:
 * an expired one is dropped when it is looked up or when room is needed. When `maxKeys` is
 * reached the oldest record (by insertion) that is finished or expired is evicted; when every
 * record is a live in-progress one, the claim fails with `IdempotencyStoreError` (503).
 *
 * Use it for a single instance, tests and development; several instances need a shared store
 * (Redis or Postgres), or a retry that lands on another instance runs again.
 */
export function memoryStore(options: MemoryStoreOptions = {}): IdempotencyStore {
  const o = parseOptions(schema, options, 'memoryStore');
  const clock = o.clock ?? systemClock;
  const max = o.maxKeys;
  const entries = new Map<string, Entry>();
  const idOf = (id: RecordId) =>
    id.scope === '' ? id.key : `${id.scope.length}:${id.scope}\n${id.key}`;

  const live = (k: string, now: number): Entry | undefined => {
    const e = entries.get(k);
    if (e === undefined) return undefined;
    if (e.until <= now) {
      entries.delete(k);
      return undefined;
    }
    return e;
  };

  /** Makes room for one more record, or throws when every record is a live claim. */
  const makeRoom = (now: number) => {
    if (entries.size < max) return;
    // Insertion order is roughly expiry order: look at the oldest few first.
    let scanned = 0;
    for (const [k, e] of entries) {
      if (e.until <= now || e.token === undefined) {
        entries.delete(k);
        return;
      }
      if (++scanned > 64) break;
    }
    for (const [k, e] of entries) {
      if (e.until <= now || e.token === undefined) {
        entries.delete(k);
        return;
      }
    }
    throw new IdempotencyStoreError(
      `memoryStore: all ${max} records are requests still running; raise maxKeys`,
    );
  };

  return {
    leases: true,
    async claim(id: RecordId, fp: string, opts: ClaimOptions): Promise<ClaimResult> {
      const k = idOf(id);
      const now = clock.now();
      const e = live(k, now);
      if (e !== undefined) {
        if (e.answer !== undefined) {
          return { state: 'completed', fingerprint: e.fingerprint, answer: e.answer };
        }
        return { state: 'in-progress', fingerprint: e.fingerprint };
      }
      makeRoom(now);
      const token = randomUUID();
      entries.set(k, { fingerprint: fp, token, answer: undefined, until: now + opts.leaseMs });
      return { state: 'claimed', token };
    },
    async renew(id, token, opts) {
      const e = live(idOf(id), clock.now());
      if (e === undefined || e.token !== token) return false;
      e.until = clock.now() + opts.leaseMs;
      return true;
    },
    async complete(id, token, answer, opts: CompleteOptions) {
      const k = idOf(id);
      const e = live(k, clock.now());
      if (e === undefined || e.token !== token) return false;
      // Re-inserted, so insertion order stays close to expiry order.
      entries.delete(k);
      entries.set(k, {
        fingerprint: e.fingerprint,
        token: undefined,
        answer: { status: answer.status, headers: { ...answer.headers }, body: answer.body },
        until: clock.now() + opts.ttlMs,
      });
      return true;
    },
    async release(id, token) {
      const k = idOf(id);
      const e = entries.get(k);
      if (e !== undefined && e.token === token) entries.delete(k);
    },
  };
}
