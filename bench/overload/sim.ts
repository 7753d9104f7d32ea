/**
 * bench/overload/sim.ts: the overload benchmark in virtual time, deterministic (a seeded PRNG and
 * a discrete-event loop; nothing waits for real). It drives the REAL Trellis objects,
 * `createShedder` from @trellis/core and `adaptiveLimit()` from @trellis/resilience, on a
 * virtual `Clock`, with the same service as bench/overload/main.ts:
 *
 * - open-loop arrivals on a fixed schedule at 0.5x, 1x, 2x, 4x the capacity;
 * - each caller gives up after 500 ms and says so in `x-trellis-deadline-ms: 500` (the server
 *   sees the connection close then, as with a real client);
 * - `wait`: the handler holds one of 10 downstream slots (FIFO) for 20 ms (±10 %), about
 *   500 req/s; `drop`: the same, slowing to 60 ms halfway (capacity 167 req/s);
 *   `cpu`: the handler costs 2 ms of CPU on the single event loop (500 req/s), every request
 *   costs 0.05 ms of CPU to parse, and a shed answer 0.05 ms more.
 *
 * Protections: none; under-pressure (event-loop delay over 50 ms, sampled every 1 s as its
 * default); a static bulkhead (limit 10, queue 10) tuned to the capacity; an untuned one (200);
 * Trellis `trellis({ shed: { limit: adaptiveLimit() } })` with default options.
 *
 * Run: npx tsx bench/overload/sim.ts  (writes bench/results/overload-sim.json and .svg)
 */
import { EventEmitter } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join } from 'node:path';
import { type Clock, type ClockTimer, createShedder, type Shedder } from '@trellis/core';
import { adaptiveLimit } from '@trellis/resilience';
import { type BenchRow, writeResult } from '../lib/report.js';

export type Scenario = 'wait' | 'drop' | 'cpu';
export type Protection = 'none' | 'under-pressure' | 'bulkhead-tuned' | 'bulkhead-200' | 'trellis';
export const protections: Protection[] = [
  'none',
  'under-pressure',
  'bulkhead-tuned',
  'bulkhead-200',
  'trellis',
];
export const protectionNames: Record<Protection, string> = {
  none: 'none',
  'under-pressure': '@fastify/under-pressure (event-loop delay 50 ms)',
  'bulkhead-tuned': 'static bulkhead tuned (limit 10, queue 10)',
  'bulkhead-200': 'static bulkhead untuned (limit 200)',
  trellis: 'Trellis adaptive limit + deadline shedding (defaults)',
};

const CAPACITY = 500;
const DEADLINE = 500;
const SLOTS = 10;
const PARSE_MS = 0.05;
const SHED_MS = 0.05;

/** SIM_LIMIT='{"algorithm":"vegas"}' tries other limit options (the figures reported use none). */
function limitOverrides(): Record<string, unknown> {
  return process.env.SIM_LIMIT ? JSON.parse(process.env.SIM_LIMIT) : {};
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Ev {
  t: number;
  seq: number;
  fn: () => void;
}

/** A binary heap of events and a Clock on its virtual time. */
class Loop implements Clock {
  t = 0;
  #seq = 0;
  #heap: Ev[] = [];
  now(): number {
    return this.t;
  }
  at(t: number, fn: () => void): Ev {
    const ev = { t, seq: this.#seq++, fn };
    const h = this.#heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(h[p] as Ev, ev)) break;
      h[i] = h[p] as Ev;
      i = p;
    }
    h[i] = ev;
    return ev;
  }
  setTimeout(callback: () => void, ms: number): ClockTimer {
    return this.at(this.t + ms, callback) as unknown as ClockTimer;
  }
  clearTimeout(timer: ClockTimer): void {
    (timer as unknown as Ev).fn = () => {};
  }
  run(until: number): void {
    const h = this.#heap;
    while (h.length > 0) {
      const top = h[0] as Ev;
      if (top.t > until) break;
      const last = h.pop() as Ev;
      if (h.length > 0) {
        let i = 0;
        for (;;) {
          const l = 2 * i + 1;
          if (l >= h.length) break;
          const r = l + 1;
          const c = r < h.length && less(h[r] as Ev, h[l] as Ev) ? r : l;
          if (less(last, h[c] as Ev)) break;
          h[i] = h[c] as Ev;
          i = c;
        }
        h[i] = last;
      }
      this.t = top.t;
      top.fn();
    }
  }
}
const less = (a: Ev, b: Ev) => a.t < b.t || (a.t === b.t && a.seq < b.seq);

/** A FIFO of `n` servers: `cost()` is read when a job starts, `done(cost)` runs when it ends. */
class Pool {
  #free: number;
  #queue: { cost: () => number; done: (cost: number) => void }[] = [];
  #head = 0;
  /** When the job running now (with one server) ends. */
  busyUntil = 0;
  constructor(
    readonly loop: Loop,
    n: number,
  ) {
    this.#free = n;
  }
  get queued(): number {
    return this.#queue.length - this.#head;
  }
  submit(cost: () => number, done: (cost: number) => void): void {
    if (this.#free > 0) {
      this.#free--;
      this.#start(cost, done);
    } else this.#queue.push({ cost, done });
  }
  #start(cost: () => number, done: (cost: number) => void): void {
    const c = cost();
    this.busyUntil = this.loop.t + c;
    this.loop.at(this.loop.t + c, () => {
      done(c);
      const next = this.#queue[this.#head];
      if (next !== undefined) {
        this.#queue[this.#head++] = undefined as never;
        if (this.#head > 1024) {
          this.#queue = this.#queue.slice(this.#head);
          this.#head = 0;
        }
        this.#start(next.cost, next.done);
      } else this.#free++;
    });
  }
}

/** A static bulkhead as an admission check: `limit` running, `queue` waiting, the rest refused. */
class StaticBulkhead {
  running = 0;
  waiting: (() => void)[] = [];
  constructor(
    readonly limit: number,
    readonly queue: number,
  ) {}
  enter(run: () => void): boolean {
    if (this.running < this.limit) {
      this.running++;
      run();
      return true;
    }
    if (this.waiting.length < this.queue) {
      this.waiting.push(run);
      return true;
    }
    return false;
  }
  leave(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}

export interface SimResult {
  scenario: Scenario;
  protection: Protection;
  load: number;
  seconds: number;
  offered: number;
  goodput: number;
  p99: number;
  wastedShare: number;
  shed: number;
  /** Answers in time per 100 ms bucket. */
  timeline: number[];
}

export function simulate(
  scenario: Scenario,
  protection: Protection,
  load: number,
  seconds = 10,
  seed = 22,
): SimResult {
  const loop = new Loop();
  const random = mulberry32(seed);
  const end = seconds * 1000;
  const rate = load * CAPACITY;
  const gap = 1000 / rate;
  const downstream = new Pool(loop, SLOTS);
  const cpu = new Pool(loop, 1);
  const serviceMs = () => {
    const base = scenario === 'drop' && loop.t >= end / 2 ? 60 : 20;
    return base * (0.9 + 0.2 * random());
  };
  let shedder: Shedder | undefined;
  if (protection === 'trellis') {
    shedder = createShedder({
      limit: adaptiveLimit({ clock: loop, ...limitOverrides() }),
      clock: loop,
    });
  }
  const bulkhead =
    protection === 'bulkhead-tuned'
      ? new StaticBulkhead(10, 10)
      : protection === 'bulkhead-200'
        ? new StaticBulkhead(200, 0)
        : undefined;
  // under-pressure: mean event-loop delay of the last 1 s window over 50 ms -> shed.
  // The loop delay is the CPU backlog (work queued ahead of a timer), sampled every 10 ms.
  let upShedding = false;
  let lagSum = 0;
  let lagN = 0;
  if (protection === 'under-pressure') {
    const tick = () => {
      // The whole backlog is one batch of ready sockets: a timer waits for all of it.
      lagSum += Math.max(0, cpu.busyUntil - loop.t) + cpu.queued * (PARSE_MS + 2);
      lagN++;
      if (loop.t < end + 1000) loop.at(loop.t + 10, tick);
    };
    const sample = () => {
      upShedding = lagN > 0 && lagSum / lagN > 50;
      lagSum = 0;
      lagN = 0;
      if (loop.t < end + 1000) loop.at(loop.t + 1000, sample);
    };
    loop.at(10, tick);
    loop.at(1000, sample);
  }
  const latencies: number[] = [];
  const timeline: number[] = Array.from({ length: seconds * 10 }, () => 0);
  let goodAnswers = 0;
  let workTotal = 0;
  let workWasted = 0;
  let shed = 0;
  let offered = 0;

  const arrive = (t0: number) => {
    offered++;
    const giveUpAt = t0 + DEADLINE;
    const res = new EventEmitter() as EventEmitter & {
      writableEnded: boolean;
      statusCode: number;
      closed: boolean;
    };
    res.writableEnded = false;
    res.statusCode = 200;
    res.closed = false;
    const close = () => {
      if (res.closed) return;
      res.closed = true;
      res.emit('close');
    };
    // The caller gives up at its deadline: the server sees the connection close.
    loop.at(giveUpAt, close);
    const answer = (work: number) => {
      const t = loop.t;
      workTotal += work;
      if (t > giveUpAt) workWasted += work;
      else {
        goodAnswers++;
        const b = Math.floor(t0 / 100);
        if (b < timeline.length) timeline[b] = (timeline[b] as number) + 1;
      }
      latencies.push(t - t0);
      res.writableEnded = true;
      close();
    };
    /** The admission checks; true when admitted. */
    const admit = (): { release: (() => void) | undefined } | undefined => {
      if (shedder !== undefined) {
        // The server's deadline starts when it reads the request: in the cpu scenario it cannot
        // know how long the request waited in the kernel before the event loop got to it.
        const left = scenario === 'cpu' ? DEADLINE : Math.max(0, Math.round(giveUpAt - loop.t));
        const req = {
          url: '/work',
          method: 'GET',
          headers: { 'x-trellis-deadline-ms': String(left) },
        } as unknown as IncomingMessage;
        if (shedder.admit(req, res as unknown as ServerResponse, '/work') !== undefined) {
          return undefined;
        }
      }
      if (protection === 'under-pressure' && upShedding) return undefined;
      return { release: undefined };
    };
    const refuse = () => {
      shed++;
      res.statusCode = 503;
      res.writableEnded = true;
      close();
    };
    if (scenario === 'cpu') {
      // One event loop: parse, admission and, when admitted, the 2 ms handler run back to back.
      let admitted = false;
      cpu.submit(
        () => {
          admitted = admit() !== undefined;
          return PARSE_MS + (admitted ? 2 : SHED_MS);
        },
        (c) => {
          if (admitted) answer(c);
          else {
            workTotal += c;
            refuse();
          }
        },
      );
      return;
    }
    const ok = admit();
    if (ok === undefined) return refuse();
    if (bulkhead !== undefined) {
      if (
        !bulkhead.enter(() =>
          downstream.submit(serviceMs, (c) => {
            bulkhead.leave();
            answer(c);
          }),
        )
      ) {
        return refuse();
      }
    } else downstream.submit(serviceMs, (c) => answer(c));
  };
  for (let t = 0; t < end; t += gap) loop.at(t, () => arrive(t));
  loop.run(end + 5_000);
  latencies.sort((a, b) => a - b);
  const p99 = latencies.length ? (latencies[Math.floor(latencies.length * 0.99)] as number) : 0;
  return {
    scenario,
    protection,
    load,
    seconds,
    offered,
    goodput: goodAnswers / seconds,
    p99,
    wastedShare: workTotal > 0 ? workWasted / workTotal : 0,
    shed,
    timeline,
  };
}

/** Seconds after the capacity drop until goodput over 1 s is back to >= 90 % of the new capacity. */
export function recoverySeconds(r: SimResult): number | undefined {
  const half = r.timeline.length / 2;
  const target = 0.9 * (CAPACITY / 3) * 0.1 * 10; // answers per 1 s window
  for (let i = half; i + 10 <= r.timeline.length; i++) {
    let sum = 0;
    for (let j = i; j < i + 10; j++) sum += r.timeline[j] as number;
    if (sum >= target) return (i + 10 - half) / 10;
  }
  return undefined;
}

function lineChart(
  title: string,
  series: { name: string; values: number[] }[],
  stepMs: number,
): string {
  const W = 760;
  const H = 300;
  const L = 50;
  const T = 40;
  const PW = 480;
  const PH = 200;
  const max = Math.max(1, ...series.flatMap((s) => s.values));
  const n = Math.max(...series.map((s) => s.values.length));
  const colors = ['#888', '#c0392b', '#2980b9', '#8e44ad', '#27ae60'];
  const x = (i: number) => L + (i / (n - 1)) * PW;
  const y = (v: number) => T + PH - (v / max) * PH;
  const parts = [
    `<text x="10" y="20" font-weight="bold" font-size="14">${title}</text>`,
    `<line x1="${L}" y1="${T + PH}" x2="${L + PW}" y2="${T + PH}" stroke="#000"/>`,
    `<line x1="${L}" y1="${T}" x2="${L}" y2="${T + PH}" stroke="#000"/>`,
    `<text x="${L - 5}" y="${T + 4}" font-size="11" text-anchor="end">${Math.round(max)}</text>`,
    `<text x="${L - 5}" y="${T + PH}" font-size="11" text-anchor="end">0</text>`,
    `<text x="${L + PW / 2}" y="${T + PH + 30}" font-size="11" text-anchor="middle">time (s); answers in time per second</text>`,
  ];
  for (let s = 0; s <= (n * stepMs) / 1000; s += 1) {
    const i = (s * 1000) / stepMs;
    parts.push(
      `<text x="${x(Math.min(i, n - 1))}" y="${T + PH + 14}" font-size="10" text-anchor="middle">${s}</text>`,
    );
  }
  series.forEach((s, k) => {
    const pts = s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    const c = colors[k % colors.length];
    parts.push(
      `<polyline fill="none" stroke="${c}" stroke-width="${/Trellis/.test(s.name) ? 2.5 : 1.5}" points="${pts}"/>`,
    );
    parts.push(`<rect x="${L + PW + 15}" y="${T + k * 18}" width="12" height="3" fill="${c}"/>`);
    parts.push(
      `<text x="${L + PW + 32}" y="${T + k * 18 + 5}" font-size="10">${s.name.slice(0, 40)}</text>`,
    );
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">${parts.join('')}</svg>`;
}

function main(): void {
  const loads = [0.5, 1, 2, 4];
  const rows: BenchRow[] = [];
  const results: SimResult[] = [];
  const lines: string[] = [];
  for (const scenario of ['wait', 'drop', 'cpu'] as Scenario[]) {
    lines.push(`\n## scenario ${scenario}`);
    lines.push('protection | load | goodput/s | p99 ms | wasted | shed');
    for (const protection of protections) {
      for (const load of loads) {
        const r = simulate(scenario, protection, load);
        results.push(r);
        lines.push(
          `${protectionNames[protection]} | ${load}x | ${r.goodput.toFixed(0)} | ${r.p99.toFixed(0)} | ${(100 * r.wastedShare).toFixed(1)} % | ${r.shed}`,
        );
        rows.push({
          name: `${scenario} ${load}x: ${protectionNames[protection]}: goodput`,
          value: Math.round(r.goodput),
          unit: 'answers in time/s',
          ...(scenario !== 'cpu' &&
            load >= 2 && {
              chart: `goodput at ${load}x capacity (${scenario === 'wait' ? '20 ms' : '20 -> 60 ms'}), answers in time/s`,
            }),
        });
        rows.push({
          name: `${scenario} ${load}x: ${protectionNames[protection]}: p99`,
          value: Math.round(r.p99),
          unit: 'ms',
        });
        rows.push({
          name: `${scenario} ${load}x: ${protectionNames[protection]}: wasted`,
          value: Number((100 * r.wastedShare).toFixed(1)),
          unit: '% of work',
        });
      }
    }
  }
  // Targets (issue 22), Trellis with default options.
  const get = (s: Scenario, p: Protection, l: number) =>
    results.find((r) => r.scenario === s && r.protection === p && r.load === l) as SimResult;
  lines.push('\n## targets (Trellis, default options)');
  const check = (name: string, value: number, target: string, pass: boolean, unit = '') => {
    lines.push(`${pass ? 'MET ' : 'MISS'} ${name}: ${value.toFixed(2)}${unit} (target ${target})`);
    rows.push({ name, value: Number(value.toFixed(3)), unit: unit || 'ratio', target, pass });
  };
  for (const s of ['wait', 'drop'] as Scenario[]) {
    for (const l of [2, 4]) {
      const t = get(s, 'trellis', l);
      const cap = s === 'wait' ? CAPACITY : (CAPACITY + CAPACITY / 3) / 2;
      check(`${s} ${l}x: goodput / capacity`, t.goodput / cap, '>= 0.90', t.goodput / cap >= 0.9);
      const b = get(s, 'bulkhead-tuned', l);
      check(
        `${s} ${l}x: goodput vs tuned bulkhead`,
        t.goodput / b.goodput,
        '>= 0.95',
        t.goodput / b.goodput >= 0.95,
      );
      for (const p of ['under-pressure', 'bulkhead-200', 'none'] as Protection[]) {
        const o = get(s, p, l);
        if (o.goodput < 0.5 * cap) {
          const ratio = o.goodput > 0 ? t.goodput / o.goodput : Number.POSITIVE_INFINITY;
          check(
            `${s} ${l}x: goodput vs ${p} (collapsed)`,
            Math.min(ratio, 999),
            '>= 3',
            ratio >= 3,
          );
        }
      }
      check(
        `${s} ${l}x: p99 of served answers`,
        t.p99,
        `<= ${DEADLINE} ms`,
        t.p99 <= DEADLINE,
        ' ms',
      );
    }
  }
  for (const l of [2, 4]) {
    const rec = recoverySeconds(get('drop', 'trellis', l));
    check(
      `drop ${l}x: seconds to 90 % of the new capacity`,
      rec ?? 99,
      '<= 2 s',
      rec !== undefined && rec <= 2,
      ' s',
    );
  }
  console.log(lines.join('\n'));
  const drop2 = protections.map((p) => {
    const r = get('drop', p, 2);
    const per = r.timeline.map((_, i) =>
      r.timeline.slice(Math.max(0, i - 9), i + 1).reduce((a, b) => a + b, 0),
    );
    return { name: protectionNames[p], values: per };
  });
  const svg = lineChart(
    'Capacity drops from 500 to 167 req/s at 5 s, offered 1000 req/s (virtual time)',
    drop2,
    100,
  );
  writeFileSync(join(import.meta.dirname, '..', 'results', 'overload-sim.svg'), svg);
  writeResult({
    area: 'overload-sim',
    title: 'Overload: adaptive limit + deadline shedding, virtual-time simulation (deterministic)',
    setup:
      'bench/overload/sim.ts: discrete-event, seeded; real createShedder + adaptiveLimit on a virtual clock; 10 s per run',
    command: 'npx tsx bench/overload/sim.ts',
    rows,
    notes: ['Chart: bench/results/overload-sim.svg (goodput over time, capacity drop at 2x).'],
  });
}

if (import.meta.url === `file://${process.argv[1]}`) main();
