import { parseOptions } from '@trellis/core';
import { z } from 'zod';
import {
  BalancerCore,
  type BalancerOptions,
  balancerFields,
  type InstanceState,
  type TrellisBalancer,
  type View,
} from './BalancerCore.js';

export type RoundRobinOptions = BalancerOptions;

const schema = z.object({ ...balancerFields }).strict();

class RoundRobin extends BalancerCore {
  #cursor = 0;

  protected choose(
    view: View,
    now: number,
    exclude: ReadonlySet<string> | undefined,
  ): InstanceState | undefined {
    const states = view.states;
    const n = states.length;
    if (view.weighted) {
      // Smooth weighted round robin (nginx): deterministic, interleaved, proportional to weight.
      const current = view.current;
      let best = -1;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const s = states[i]!;
        if (!this.eligible(s, now, exclude)) continue;
        current[i]! += s.weight;
        total += s.weight;
        if (best === -1 || current[i]! > current[best]!) best = i;
      }
      if (best === -1) return undefined;
      current[best]! -= total;
      return states[best];
    }
    for (let k = 0; k < n; k++) {
      const i = this.#cursor++ % n;
      if (this.#cursor >= 0x3fffffff) this.#cursor = 0;
      const s = states[i]!;
      if (this.eligible(s, now, exclude)) return s;
    }
    return undefined;
  }
}

/**
 * Round robin: each instance in turn (smooth weighted round robin when instances carry different
 * `weight`s), skipping ejected and excluded instances.
 *
 * @example
 * ```ts
 * import { roundRobin, staticDiscovery } from '@trellis/discovery';
 * const discovery = staticDiscovery({ services: { users: ['http://10.0.0.1:80', 'http://10.0.0.2:80'] } });
 * const balancer = roundRobin();
 * const pick = balancer.pick(await discovery.resolve('users'));
 * // ... send the request to pick.instance.url, then:
 * pick?.done({ ok: true, durationMs: 12 });
 * ```
 */
export function roundRobin(options: RoundRobinOptions = {}): TrellisBalancer {
  return new RoundRobin(parseOptions(schema, options, 'roundRobin'));
}
