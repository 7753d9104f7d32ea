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

export type RandomOptions = BalancerOptions;

const schema = z.object({ ...balancerFields }).strict();

class RandomBalancer extends BalancerCore {
  protected choose(
    view: View,
    now: number,
    exclude: ReadonlySet<string> | undefined,
  ): InstanceState | undefined {
    if (!view.weighted) return this.randomEligible(view, now, exclude, undefined);
    // Weighted: binary search the prefix sums, a few draws, then fall back to a scan.
    const { states, cumulative, totalWeight } = view;
    for (let attempt = 0; attempt < 3; attempt++) {
      const r = this.random() * totalWeight;
      let lo = 0;
      let hi = states.length - 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (cumulative[mid]! > r) hi = mid;
        else lo = mid + 1;
      }
      const s = states[lo]!;
      if (this.eligible(s, now, exclude)) return s;
    }
    return this.randomEligible(view, now, exclude, undefined);
  }
}

/**
 * Random: a uniformly random instance (weighted by `weight` when instances differ), skipping
 * ejected and excluded instances.
 *
 * @example
 * ```ts
 * import { random } from '@trellis/discovery';
 * const balancer = random();
 * const pick = balancer.pick([{ id: 'a:80', url: 'http://a:80' }, { id: 'b:80', url: 'http://b:80' }]);
 * pick?.done({ ok: true, durationMs: 3 });
 * ```
 */
export function random(options: RandomOptions = {}): TrellisBalancer {
  return new RandomBalancer(parseOptions(schema, options, 'random'));
}
