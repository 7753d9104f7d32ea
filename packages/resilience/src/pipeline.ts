import {
  type ExecuteOptions,
  INSTRUMENT_POLICY,
  type Policy,
  type PolicyContext,
  type PolicyInstrumentation,
  parseOptions,
  policyField,
} from '@trellis/core';
import { z } from 'zod';
import { type Task, toContext } from './CallContext.js';
import { idempotent, isIdempotent } from './hedge.js';
import { instrument } from './instrument.js';

/**
 * Policies composed into one: the first is outermost. `pipeline(retry(), circuitBreaker(),
 * timeout(1_000))` retries calls that the breaker lets through, each attempt limited to 1 s.
 * Nested pipelines are flattened. Each policy hands its context to the next as `opts`, so
 * signals, attempt numbers and `idempotent(fn)` marks travel through.
 *
 * @example
 * ```ts
 * import { circuitBreaker, pipeline, retry, timeout } from '@trellis/resilience';
 * const policy = pipeline(retry({ maxAttempts: 3 }), circuitBreaker(), timeout(1_000));
 * const answer = await policy.execute(async ({ signal, attempt }) => ({ attempt, aborted: signal.aborted }));
 * ```
 */
export class PipelinePolicy<P extends readonly Policy[] = readonly Policy[]> implements Policy {
  /** Lets a typed client given `metrics` instrument this policy (see `instrument()`). */
  [INSTRUMENT_POLICY](target: PolicyInstrumentation): void {
    instrument(this, target);
  }

  /** The flattened policies, outermost first. */
  readonly policies: P;

  constructor(policies: P) {
    parseOptions(policiesSchema, policies, 'pipeline');
    const flat: Policy[] = [];
    for (const p of policies) {
      if (p instanceof PipelinePolicy) flat.push(...(p.policies as readonly Policy[]));
      else flat.push(p);
    }
    this.policies = flat as unknown as P;
  }

  execute<T>(fn: Task<T>, opts?: ExecuteOptions): Promise<T> {
    const policies = this.policies as readonly Policy[];
    if (policies.length === 0) {
      try {
        return Promise.resolve(fn(toContext(opts)));
      } catch (err) {
        return Promise.reject(err);
      }
    }
    return run(policies, 0, fn, isIdempotent(fn), opts);
  }
}

const policiesSchema = z.array(policyField());

function run<T>(
  policies: readonly Policy[],
  i: number,
  fn: Task<T>,
  marked: boolean,
  opts: ExecuteOptions | undefined,
): Promise<T> {
  const policy = policies[i] as Policy;
  if (i === policies.length - 1) return policy.execute(fn, opts);
  const next = (ctx: PolicyContext) => run(policies, i + 1, fn, marked, ctx);
  return policy.execute(marked ? idempotent(next) : next, opts);
}

/**
 * Composes policies, outermost first.
 *
 * @example
 * ```ts
 * import { bulkhead, pipeline, retry, timeout } from '@trellis/resilience';
 * const policy = pipeline(retry(), bulkhead({ limit: 8 }), timeout(2_000));
 * ```
 */
export function pipeline<P extends readonly Policy[]>(...policies: P): PipelinePolicy<P> {
  return new PipelinePolicy(policies);
}
