import { durationMs, type PickOutcome, parseOptions } from '@trellis/core';
import { z } from 'zod';
import {
  BalancerCore,
  type BalancerOptions,
  balancerFields,
  type InstanceState,
  type ParsedBalancerOptions,
  type TrellisBalancer,
  type View,
} from './BalancerCore.js';

export interface PeakEwmaOptions extends BalancerOptions {
  /** Time constant of the latency average: older samples weigh e^(-age/decayMs). Default 10 000. */
  readonly decayMs?: number;
  /** Latency assumed for an instance with no sample yet and requests in flight. Default 30. */
  readonly defaultRttMs?: number;
  /** A failed request counts as at least this slow, so fast failures do not attract traffic. Default 1 000. */
  readonly failurePenaltyMs?: number;
}

const schema = z
  .object({
    ...balancerFields,
    decayMs: durationMs({ positive: true }).default(10_000),
    defaultRttMs: durationMs({ positive: true }).default(30),
    failurePenaltyMs: durationMs().default(1_000),
  })
  .strict();

class PeakEwma extends BalancerCore {
  readonly #decayMs: number;
  readonly #defaultRtt: number;
  readonly #penalty: number;

  constructor(opts: ParsedBalancerOptions & z.output<typeof schema>) {
    super(opts);
    this.#decayMs = opts.decayMs;
    this.#defaultRtt = opts.defaultRttMs;
    this.#penalty = opts.failurePenaltyMs;
  }

  #cost(s: InstanceState, now: number): number {
    if (s.ewma < 0) {
      // Never measured: free while idle, so a new instance is probed at once (Finagle), but only
      // one request at a time until its first answer says how fast it is.
      return s.inflight === 0 ? 0 : (this.#defaultRtt * (s.inflight + 1)) / s.weight;
    }
    const rtt = s.ewma * Math.exp(-Math.max(0, now - s.stamp) / this.#decayMs);
    return (rtt * (s.inflight + 1)) / s.weight;
  }

  protected choose(
    view: View,
    ejectNow: number,
    exclude: ReadonlySet<string> | undefined,
  ): InstanceState | undefined {
    const a = this.randomEligible(view, ejectNow, exclude, undefined);
    if (a === undefined) return undefined;
    const b = this.randomEligible(view, ejectNow, exclude, a);
    if (b === undefined) return a;
    const now = this.clock.now();
    return this.#cost(b, now) < this.#cost(a, now) ? b : a;
  }

  protected override observe(s: InstanceState, outcome: PickOutcome): void {
    const now = this.clock.now();
    let rtt = outcome.durationMs;
    if (!(rtt >= 0)) rtt = 0;
    if (!outcome.ok && rtt < this.#penalty) rtt = this.#penalty;
    if (s.ewma < 0 || rtt > s.ewma) {
      // Peak sensitivity: a slower sample replaces the estimate at once.
      s.ewma = rtt;
    } else {
      const w = Math.exp(-Math.max(0, now - s.stamp) / this.#decayMs);
      s.ewma = s.ewma * w + rtt * (1 - w);
    }
    s.stamp = now;
  }
}

/**
 * Peak EWMA (Finagle, Linkerd): power of two choices on `latency x (in flight + 1)`, where latency
 * is an exponentially weighted moving average that jumps up at once on a slow response and decays
 * back over `decayMs`. A slow instance is avoided within a few requests; the recommended default
 * for clients.
 *
 * @example
 * ```ts
 * import { peakEwma } from '@trellis/discovery';
 * const balancer = peakEwma();
 * const instances = [{ id: 'a:80', url: 'http://a:80' }, { id: 'b:80', url: 'http://b:80' }];
 * const pick = balancer.pick(instances)!;
 * const started = performance.now();
 * // ... request pick.instance.url ...
 * pick.done({ ok: true, durationMs: performance.now() - started });
 * ```
 */
export function peakEwma(options: PeakEwmaOptions = {}): TrellisBalancer {
  return new PeakEwma(parseOptions(schema, options, 'peakEwma'));
}
