/**
 * The load-balancing simulation of bench/discovery/main.ts: a virtual-time discrete-event model driven
 * by the REAL balancer objects. Time is a `Clock` whose `now()` is the simulation's virtual time
 * (events in a binary heap, no real waiting), passed to each balancer as its `clock`, so peak
 * EWMA's decay and outlier ejection run on simulated time.
 *
 * Model: 10 instances; Poisson arrivals at `rps`; each request's service time is 4 ms + an
 * exponential with mean 6 ms, independent of load (instances have ample concurrency), except
 * that instance 0 answers in 2 000 ms between `slowFrom` and `slowTo`. The client gives up after
 * `timeoutMs` (a failure, reported to the balancer as `{ ok: false, durationMs: timeoutMs }`).
 */
import type { Balancer, Clock, ClockTimer, Instance } from '@trellis/core';

export interface SimOptions {
  seconds: number;
  rps: number;
  slowFrom: number;
  slowTo: number;
  slowMs: number;
  timeoutMs: number;
  seed: number;
}

export interface SimResult {
  requests: number;
  successRate: number;
  p50: number;
  p99: number;
  p999: number;
  toSlow: number;
}

export function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    // mulberry32
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A virtual clock: `now()` is simulated time; timers are unused by balancers but supported. */
export class VirtualClock implements Clock {
  t = 0;
  now(): number {
    return this.t;
  }
  setTimeout(): ClockTimer {
    throw new Error('the simulation clock does not run timers');
  }
  clearTimeout(): void {}
}

interface Ev {
  at: number;
  seq: number;
  kind: 0 | 1; // 0 arrival, 1 completion
  done?: () => void;
}

class Heap {
  readonly items: Ev[] = [];
  push(e: Ev) {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p]!, a[i]!)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): Ev | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
const less = (x: Ev, y: Ev) => x.at < y.at || (x.at === y.at && x.seq < y.seq);

const pct = (sorted: Float64Array, p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;

export function simulate(balancer: Balancer, clock: VirtualClock, o: SimOptions): SimResult {
  const rand = seeded(o.seed);
  const instances: Instance[] = Array.from({ length: 10 }, (_, i) => ({
    id: `10.0.0.${i + 1}:80`,
    url: `http://10.0.0.${i + 1}:80`,
  }));
  const slowId = instances[0]!.id;
  const heap = new Heap();
  let seq = 0;
  const end = o.seconds * 1000;
  const latencies: number[] = [];
  let ok = 0;
  let toSlow = 0;
  heap.push({ at: -Math.log(1 - rand()) * (1000 / o.rps), seq: seq++, kind: 0 });
  for (let ev = heap.pop(); ev !== undefined; ev = heap.pop()) {
    clock.t = ev.at;
    if (ev.kind === 1) {
      ev.done!();
      continue;
    }
    if (ev.at >= end) continue;
    heap.push({ at: ev.at - Math.log(1 - rand()) * (1000 / o.rps), seq: seq++, kind: 0 });
    const pick = balancer.pick(instances);
    const service = 4 - Math.log(1 - rand()) * 6;
    if (pick === undefined) {
      latencies.push(0);
      continue;
    }
    const slow =
      pick.instance.id === slowId && ev.at >= o.slowFrom * 1000 && ev.at < o.slowTo * 1000;
    if (pick.instance.id === slowId) toSlow++;
    const latency = slow ? o.slowMs : service;
    const success = latency <= o.timeoutMs;
    const observed = success ? latency : o.timeoutMs;
    latencies.push(observed);
    if (success) ok++;
    heap.push({
      at: ev.at + observed,
      seq: seq++,
      kind: 1,
      done: () => pick.done({ ok: success, durationMs: observed }),
    });
  }
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    successRate: ok / latencies.length,
    p50: pct(sorted, 0.5),
    p99: pct(sorted, 0.99),
    p999: pct(sorted, 0.999),
    toSlow,
  };
}
