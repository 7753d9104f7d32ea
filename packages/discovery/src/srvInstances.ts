import type { Instance } from '@trellis/core';
import { hostPort } from './instances.js';

/** One SRV answer with its target's addresses already looked up. */
export interface ResolvedSrv {
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
  /** Addresses of `name`; empty when it did not resolve. */
  readonly addresses: readonly string[];
}

/**
 * Turns SRV answers into instances per RFC 2782: a target of "." means the service is
 * unavailable, and a record with port 0 is skipped; the lowest priority with at least one reachable address wins (with `'all'`,
 * every priority is kept, lowest first, and `metadata.priority` tells them apart); within a
 * priority, `weight` becomes the instance weight (a weight of 0 gets a very small share when
 * others are positive, an equal share when all are 0). Order is stable: priority, then weight
 * (highest first), then id.
 */
export function srvInstances(
  records: readonly ResolvedSrv[],
  scheme: 'http' | 'https',
  priorities: 'lowest' | 'all',
): Instance[] {
  // Port 0 cannot be connected to (RFC 6335 reserves it): such a record is skipped like an
  // unreachable target, so a usable lower-priority backup is served instead.
  const usable = records.filter(
    (r) =>
      r.name !== '.' &&
      r.name !== '' &&
      r.addresses.length > 0 &&
      Number.isInteger(r.port) &&
      r.port > 0 &&
      r.port <= 65_535,
  );
  if (usable.length === 0) return [];
  const byPriority = new Map<number, ResolvedSrv[]>();
  for (const r of usable) {
    const group = byPriority.get(r.priority);
    if (group === undefined) byPriority.set(r.priority, [r]);
    else group.push(r);
  }
  const order = [...byPriority.keys()].sort((a, b) => a - b);
  const chosen = priorities === 'lowest' ? order.slice(0, 1) : order;
  const out: Instance[] = [];
  const seen = new Set<string>();
  for (const priority of chosen) {
    const group = byPriority.get(priority)!;
    const positive = group.filter((r) => r.weight > 0).map((r) => r.weight);
    const zeroWeight = positive.length === 0 ? 1 : Math.min(...positive) / 100;
    const items: Instance[] = [];
    for (const r of group) {
      for (const address of r.addresses) {
        const id = hostPort(address, r.port);
        if (seen.has(id)) continue;
        seen.add(id);
        items.push({
          id,
          url: `${scheme}://${id}`,
          weight: r.weight > 0 ? r.weight : zeroWeight,
          metadata: { target: r.name, priority: String(r.priority), weight: String(r.weight) },
        });
      }
    }
    items.sort(
      (a, b) => (b.weight ?? 1) - (a.weight ?? 1) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
    out.push(...items);
  }
  return out;
}
