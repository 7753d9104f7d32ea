import { parseOptions } from '@trellis/core';
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

export interface ConsistentHashOptions extends BalancerOptions {
  /**
   * Points per instance on the ring (times its `weight` relative to the mean weight, rounded).
   * Default 100. The whole ring holds at most 65 536 points (plus one per instance beyond that):
   * larger rings are scaled down, keeping the weights' proportions.
   */
  readonly replicas?: number;
  /**
   * Bounded loads (Mirrokni et al., used by HAProxy and Envoy): an instance takes a key only while
   * its requests in flight stay under `loadFactor x average`; otherwise the key walks on to the
   * next instance on the ring. Default 1.25; `Infinity` turns the bound off.
   */
  readonly loadFactor?: number;
}

const schema = z
  .object({
    ...balancerFields,
    replicas: z.number().int().min(1).max(10_000).default(100),
    loadFactor: z.number().min(1).default(1.25),
  })
  .strict();

/** 32-bit FNV-1a with a murmur3 finalizer, so nearby strings land far apart on the ring. */
export function hash32(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/**
 * The most points a ring holds (plus one per instance beyond that), whatever the weights: an SRV
 * weight of 65535 (RFC 2782's maximum) must not build a ring of millions of points.
 */
export const MAX_RING_POINTS = 65_536;

/**
 * Points per instance: `replicas x weight / mean weight` (so only relative weights matter),
 * scaled down to fit {@link MAX_RING_POINTS}, at least 1 each.
 */
export function ringCounts(weights: readonly number[], replicas: number): number[] {
  if (weights.length === 0) return [];
  const clean = weights.map((w) => (Number.isFinite(w) && w > 0 ? w : 1));
  const mean = clean.reduce((a, b) => a + b, 0) / clean.length;
  const total = replicas * clean.length;
  const scale = Math.min(1, MAX_RING_POINTS / total);
  return clean.map((w) => Math.max(1, Math.round(((replicas * w) / mean) * scale)));
}

class ConsistentHash extends BalancerCore {
  readonly #replicas: number;
  readonly #loadFactor: number;

  constructor(opts: ParsedBalancerOptions & z.output<typeof schema>) {
    super(opts);
    this.#replicas = opts.replicas;
    this.#loadFactor = opts.loadFactor;
  }

  #ring(view: View): { hashes: Uint32Array; owners: Uint32Array } {
    if (view.ring !== undefined) return view.ring;
    const points: { h: number; owner: number }[] = [];
    const counts = ringCounts(
      view.states.map((s) => s.weight),
      this.#replicas,
    );
    view.states.forEach((s, owner) => {
      const count = counts[owner] as number;
      for (let r = 0; r < count; r++) points.push({ h: hash32(`${s.id}#${r}`), owner });
    });
    points.sort((a, b) => a.h - b.h || a.owner - b.owner);
    const ring = {
      hashes: Uint32Array.from(points, (p) => p.h),
      owners: Uint32Array.from(points, (p) => p.owner),
    };
    view.ring = ring;
    return ring;
  }

  protected choose(
    view: View,
    now: number,
    exclude: ReadonlySet<string> | undefined,
    key: string | undefined,
  ): InstanceState | undefined {
    if (key === undefined) return this.randomEligible(view, now, exclude, undefined);
    const { hashes, owners } = this.#ring(view);
    const states = view.states;
    const h = hash32(key);
    let lo = 0;
    let hi = hashes.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (hashes[mid]! < h) lo = mid + 1;
      else hi = mid;
    }
    const bound = Number.isFinite(this.#loadFactor)
      ? Math.ceil((this.#loadFactor * (this.totalInflight + 1)) / states.length)
      : Number.POSITIVE_INFINITY;
    let fallback: InstanceState | undefined;
    for (let k = 0; k < hashes.length; k++) {
      const s = states[owners[(lo + k) % hashes.length]!]!;
      if (!this.eligible(s, now, exclude)) continue;
      if (s.inflight < bound) return s;
      fallback ??= s;
    }
    return fallback;
  }
}

/**
 * Consistent hashing with bounded loads for sticky keys (`pick(instances, { key: userId })`):
 * the same key keeps going to the same instance while the set is stable, only ~1/n of keys move
 * when an instance comes or goes, and no instance takes more than `loadFactor x` the average
 * load. Without a key it picks at random.
 *
 * @example
 * ```ts
 * import { consistentHash } from '@trellis/discovery';
 * const balancer = consistentHash({ loadFactor: 1.25 });
 * const instances = [{ id: 'a:80', url: 'http://a:80' }, { id: 'b:80', url: 'http://b:80' }];
 * const pick = balancer.pick(instances, { key: 'user-42' })!;
 * pick.done({ ok: true, durationMs: 5 });
 * ```
 */
export function consistentHash(options: ConsistentHashOptions = {}): TrellisBalancer {
  return new ConsistentHash(parseOptions(schema, options, 'consistentHash'));
}
