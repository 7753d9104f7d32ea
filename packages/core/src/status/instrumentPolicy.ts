import type { Registry, RegistryContentType } from 'prom-client';
import type { Policy } from '../Policy.js';

/**
 * The key under which a policy offers to instrument itself. `@trellis/resilience` policies
 * implement it (calling their own `instrument()`), so a typed client given `metrics` can record
 * its policy's breaker, retry, budget and bulkhead metrics without core importing resilience.
 */
export const INSTRUMENT_POLICY: unique symbol = Symbol.for('trellis.instrumentPolicy') as never;

/** Where a policy records its metrics. */
export interface PolicyInstrumentation {
  /** A prom-client registry (`createMetrics().registry`). */
  readonly registry: Registry<RegistryContentType>;
  /** The `name` label of the policy's series (the client's name). */
  readonly name: string;
}

/** A policy that can instrument itself: `@trellis/resilience` policies are. */
export interface InstrumentablePolicy extends Policy {
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void;
}

/** True when `policy` offers {@link INSTRUMENT_POLICY}. */
export function isInstrumentable(policy: unknown): policy is InstrumentablePolicy {
  return (
    typeof policy === 'object' &&
    policy !== null &&
    typeof (policy as Partial<InstrumentablePolicy>)[INSTRUMENT_POLICY] === 'function'
  );
}
