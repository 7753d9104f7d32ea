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

export type LeastRequestOptions = BalancerOptions;

const schema = z.object({ ...balancerFields }).strict();

class LeastRequest extends BalancerCore {
  protected choose(
    view: View,
    now: number,
    exclude: ReadonlySet<string> | undefined,
  ): InstanceState | undefined {
    const a = this.randomEligible(view, now, exclude, undefined);
    if (a === undefined) return undefined;
    const b = this.randomEligible(view, now, exclude, a);
    if (b === undefined) return a;
    // Fewer requests in flight per unit of weight wins; ties keep the first draw.
    return (b.inflight + 1) / b.weight < (a.inflight + 1) / a.weight ? b : a;
  }
}

/**
 * Least request by the power of two choices: draw two instances at random and send the request to
 * the one with fewer requests in flight (relative to its `weight`). Nearly as good as a full scan,
 * in O(1), and without the herding of "always the least loaded".
 *
 * @example
 * ```ts
 * import { leastRequest } from '@trellis/discovery';
 * const balancer = leastRequest();
 * const pick = balancer.pick([{ id: 'a:80', url: 'http://a:80' }, { id: 'b:80', url: 'http://b:80' }]);
 * pick?.done({ ok: false, durationMs: 1000 }); // failures feed outlier ejection
 * ```
 */
export function leastRequest(options: LeastRequestOptions = {}): TrellisBalancer {
  return new LeastRequest(parseOptions(schema, options, 'leastRequest'));
}
