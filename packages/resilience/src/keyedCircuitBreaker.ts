import { Emitter, type Event, parseOptions } from '@trellis/core';
import { z } from 'zod';
import {
  breakerSchema,
  type CircuitBreakerOptions,
  CircuitBreakerPolicy,
  type CircuitSnapshot,
  type StateChangeEvent,
  snapshotSchema,
} from './circuitBreaker.js';

export interface KeyedStateChangeEvent extends StateChangeEvent {
  readonly key: string;
}

export interface KeyedCircuitBreaker {
  /** The breaker for `key`, made on first use with the shared options. */
  get(key: string): CircuitBreakerPolicy;
  /** Forgets the breaker for `key` (e.g. when the instance leaves discovery). */
  delete(key: string): void;
  readonly size: number;
  /** State changes of every key's breaker. */
  readonly onStateChange: Event<KeyedStateChangeEvent>;
  /** Closes and forgets every breaker. */
  close(): void;
}

export interface KeyedCircuitBreakerOptions extends Omit<CircuitBreakerOptions, 'initialState'> {
  /**
   * Keep at most this many breakers: the least recently used one is closed and forgotten when
   * a new key would exceed it (so keys from an unbounded set cannot grow memory without end).
   * Default: unbounded (call `delete(key)` when an instance leaves).
   */
  maxKeys?: number;
  /** Snapshots to start keys from (e.g. persisted `toJSON()` output), by key. */
  initialStates?: Record<string, CircuitSnapshot>;
}

const keyedSchema = z.object({
  initialStates: z.record(z.string(), snapshotSchema).optional(),
  maxKeys: z.number().int().min(1).optional(),
});

/**
 * One circuit breaker per key (an upstream instance, a host): options are validated once and
 * shared, breakers are created on first `get`, and an idle breaker is a plain object with no
 * timer (10,000 of them cost a few MB; see bench/resilience/main.ts).
 *
 * @example
 * ```ts
 * import { keyedCircuitBreaker } from '@trellis/resilience';
 * const breakers = keyedCircuitBreaker({ consecutiveFailures: 3 });
 * await breakers.get('10.0.0.7:8080').execute(async () => 'ok');
 * breakers.close();
 * ```
 */
export function keyedCircuitBreaker(options: KeyedCircuitBreakerOptions = {}): KeyedCircuitBreaker {
  const { initialStates, maxKeys, ...rest } = options;
  parseOptions(keyedSchema, { initialStates, maxKeys }, 'keyedCircuitBreaker');
  const base = parseOptions(breakerSchema, rest, 'keyedCircuitBreaker');
  const states = new Map<string, unknown>(Object.entries(initialStates ?? {}));
  const breakers = new Map<string, CircuitBreakerPolicy>();
  const keys = new WeakMap<CircuitBreakerPolicy, string>();
  const changes = new Emitter<KeyedStateChangeEvent>();
  const hook = (breaker: CircuitBreakerPolicy, event: StateChangeEvent) => {
    if (changes.listenerCount === 0) return;
    changes.emit({ ...event, key: keys.get(breaker) ?? '' });
  };
  return {
    get(key) {
      let breaker = breakers.get(key);
      if (breaker !== undefined) {
        if (maxKeys !== undefined) {
          // Map order is insertion order: re-inserting marks the key as most recently used.
          breakers.delete(key);
          breakers.set(key, breaker);
        }
      } else {
        if (maxKeys !== undefined && breakers.size >= maxKeys) {
          const oldest = breakers.keys().next().value as string;
          breakers.get(oldest)?.close();
          breakers.delete(oldest);
        }
        const init = states.get(key);
        let o =
          init === undefined
            ? base
            : parseOptions(breakerSchema, { ...rest, initialState: init }, 'keyedCircuitBreaker');
        // With a status registry, each key's breaker registers itself as `name/key`.
        if (o.status !== undefined) o = { ...o, name: `${o.name ?? 'breaker'}/${key}` };
        if (init !== undefined) states.delete(key);
        breaker = new CircuitBreakerPolicy(o, hook);
        breakers.set(key, breaker);
        keys.set(breaker, key);
      }
      return breaker;
    },
    delete(key) {
      breakers.get(key)?.close();
      breakers.delete(key);
    },
    get size() {
      return breakers.size;
    },
    onStateChange: changes.event,
    close() {
      for (const breaker of breakers.values()) breaker.close();
      breakers.clear();
      changes.clear();
    },
  };
}
