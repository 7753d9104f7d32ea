/**
 * Discovery benchmark (`npx tsx bench/discovery/main.ts`; build first: `npx turbo run build
 * --filter=@trellis/discovery`). Three parts:
 *  1. etcd: time from `register()` until a watcher in ANOTHER process sees the instance, median
 *     of 50, next to `etcdctl watch` (etcd's own Go client) seeing a plain put, measured the same
 *     way (parent clock, child stdout line).
 *  2. `resolve()` from cache + one balancer pick + done(), per call, for each balancer, next to a
 *     bare `array[i++ % n]`.
 *  3. A virtual-time simulation (bench/discovery/sim.ts) of 10 instances with one slow for a
 *     while: p99 and success rate with a 1 s timeout for roundRobin, leastRequest, peakEwma.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { etcdDiscovery, leastRequest, peakEwma, roundRobin } from '@trellis/discovery';
import { findBinary, hasEngine, startEtcd } from '../../testing/engines.js';
import { type BenchRow, writeResult } from '../lib/report.js';
import { simulate, VirtualClock } from './sim.js';

const here = import.meta.dirname;
const rows: BenchRow[] = [];
const notes: string[] = [];
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
};

/** Waits for a line matching `re` on the child's stdout. */
function lineWaiter(child: ChildProcess) {
  let buffer = '';
  const waiting: { re: RegExp; resolve: (at: number) => void }[] = [];
  const seen: string[] = [];
  child.stdout!.on('data', (d: Buffer) => {
    const at = performance.now();
    buffer += d.toString();
    let nl = buffer.indexOf('\n');
    while (nl !== -1) {
      const line = buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
      nl = buffer.indexOf('\n');
      const i = waiting.findIndex((w) => w.re.test(line));
      if (i !== -1) waiting.splice(i, 1)[0]!.resolve(at);
      else seen.push(line);
    }
  });
  return (re: RegExp, ms = 10_000) =>
    new Promise<number>((resolve, reject) => {
      const early = seen.findIndex((l) => re.test(l));
      if (early !== -1) {
        seen.splice(early, 1);
        resolve(performance.now());
        return;
      }
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}`)), ms);
      waiting.push({
        re,
        resolve: (at) => {
          clearTimeout(timer);
          resolve(at);
        },
      });
    });
}

async function etcdPart() {
  if (!hasEngine('etcd')) {
    notes.push('etcd part skipped: etcd binary missing');
    return;
  }
  const etcd = await startEtcd();
  try {
    const watcher = spawn(
      process.execPath,
      ['--import', 'tsx', join(here, 'watcher.ts'), etcd.endpoint, 'bench'],
      {
        cwd: here,
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    const waitLine = lineWaiter(watcher);
    await waitLine(/^ready$/);
    const registrar = etcdDiscovery({ endpoints: [etcd.endpoint] });
    const ours: number[] = [];
    for (let i = 0; i < 55; i++) {
      const id = `10.1.${Math.floor(i / 250)}.${i % 250}:80`;
      const t0 = performance.now();
      const reg = await registrar.register(
        { id, url: `http://${id}` },
        { service: 'bench', ttlSeconds: 30 },
      );
      const seenAt = await waitLine(new RegExp(`^seen ${id.replace(/\./g, '\\.')}$`));
      if (i >= 5) ours.push(seenAt - t0); // 5 warm-up rounds
      await reg.deregister();
    }
    watcher.kill('SIGTERM');
    await registrar.close();

    const etcdctl = findBinary('etcdctl');
    let peer: number | undefined;
    if (etcdctl) {
      const child = spawn(
        etcdctl,
        [`--endpoints=${etcd.endpoint}`, 'watch', '--prefix', '/bench-peer/'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, ETCDCTL_API: '3' },
        },
      );
      const waitPeer = lineWaiter(child);
      await new Promise((r) => setTimeout(r, 500)); // etcdctl prints nothing when ready
      const times: number[] = [];
      for (let i = 0; i < 55; i++) {
        const key = `/bench-peer/k${i}`;
        const t0 = performance.now();
        await fetch(`${etcd.endpoint}/v3/kv/put`, {
          method: 'POST',
          body: JSON.stringify({ key: Buffer.from(key).toString('base64'), value: 'eA==' }),
        });
        const at = await waitPeer(new RegExp(`^${key}$`));
        if (i >= 5) times.push(at - t0);
      }
      child.kill('SIGTERM');
      peer = median(times);
    }
    const m = median(ours);
    rows.push({
      name: "etcd: register() visible to another process's watcher (median of 50)",
      value: m,
      unit: 'ms',
      target: '< 100 ms',
      pass: m < 100,
      chart: 'etcd registration visible (ms)',
    });
    if (peer !== undefined) {
      rows.push({
        name: 'etcdctl watch (Go client) seeing a plain put, same method (median of 50)',
        value: peer,
        unit: 'ms',
        chart: 'etcd registration visible (ms)',
      });
      rows.push({
        name: 'etcd visibility: etcdctl ÷ trellis (> 1: trellis faster)',
        value: peer / m,
        unit: '×',
        peer: 'etcdctl watch',
        ratio: peer / m,
      });
    }
    notes.push(
      'etcd: register() = lease grant + put (2 round trips) before the watcher can see it; etcdctl row is a single put, so it is a floor, not a like-for-like peer.',
    );
  } finally {
    await etcd.destroy();
  }
}

async function pickPart() {
  const names = ['roundRobin', 'random', 'leastRequest', 'peakEwma', 'consistentHash'];
  const bares: number[] = [];
  for (const name of names) {
    // One process per balancer: an application's call sites see one balancer type, while a
    // single process running all five would measure V8's megamorphic dispatch instead.
    const child = spawn(process.execPath, ['--import', 'tsx', join(here, 'pick.ts'), name], {
      cwd: here,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
    });
    // 'close', not 'exit': the exit can come before the last of stdout has been read.
    const [code] = (await once(child, 'close')) as [number | null];
    if (code !== 0) throw new Error(`discovery-pick ${name} exited with ${code}`);
    const r = JSON.parse(out.trim()) as { bare: number; resolve: number; alone: number };
    bares.push(r.bare);
    const label = name === 'consistentHash' ? 'consistentHash (key)' : name;
    rows.push({
      name: `resolve() from cache + ${label} pick + done()`,
      value: r.resolve,
      unit: 'ns/call',
      peer: 'baseline (same process)',
      ratio: r.bare / r.resolve,
      target: '< 1000 ns',
      pass: r.resolve < 1000,
      chart: 'resolve + pick (ns/call)',
    });
    rows.push({ name: `  ${label} pick + done() alone (sync)`, value: r.alone, unit: 'ns/call' });
  }
  rows.push({
    name: 'baseline: await cached list + array[i++ % n] (median over the processes)',
    value: median(bares),
    unit: 'ns/call',
  });
  notes.push(
    'resolve + pick: each balancer in its own process (bench/discovery/pick.ts), 8 interleaved rounds of 200,000 calls of baseline / resolve+pick / pick alone after a warm-up round, median; 10 instances.',
  );
}

function simPart() {
  const base = {
    seconds: 60,
    rps: 1000,
    slowFrom: 15,
    slowTo: 45,
    slowMs: 2000,
    timeoutMs: 1000,
    seed: 42,
  };
  for (const ejection of [false, true]) {
    const results: Record<string, ReturnType<typeof simulate>> = {};
    for (const [name, make] of [
      ['roundRobin', roundRobin],
      ['leastRequest', leastRequest],
      ['peakEwma', peakEwma],
    ] as const) {
      const clock = new VirtualClock();
      const b = make({ clock, random: seededFor(name), ...(ejection ? {} : { outlier: false }) });
      results[name] = simulate(b, clock, base);
    }
    const label = ejection ? 'outlier ejection on (default)' : 'outlier ejection off';
    for (const [name, r] of Object.entries(results)) {
      rows.push({
        name: `sim [${label}] ${name}: p99`,
        value: r.p99,
        unit: 'ms',
        chart: ejection ? undefined : 'sim p99, one instance slow (ms)',
      });
      rows.push({
        name: `sim [${label}] ${name}: success rate`,
        value: r.successRate * 100,
        unit: '%',
      });
      rows.push({ name: `sim [${label}] ${name}: p99.9`, value: r.p999, unit: 'ms' });
    }
    const rr = results.roundRobin!;
    const pe = results.peakEwma!;
    rows.push({
      name: `sim [${label}] p99 roundRobin ÷ peakEwma (> 1: peakEwma better)`,
      value: rr.p99 / pe.p99,
      unit: '×',
      peer: 'roundRobin',
      ratio: rr.p99 / pe.p99,
      target: ejection ? undefined : 'peakEwma p99 < roundRobin p99',
      pass: ejection ? undefined : pe.p99 < rr.p99,
    });
  }
  notes.push(
    'simulation: virtual-time discrete-event model (bench/discovery/sim.ts) driving the real balancer objects with a virtual Clock; 10 instances, 1000 req/s Poisson for 60 s, service time 4 ms + Exp(6 ms), instance 0 answers in 2 s from t=15 s to t=45 s, client timeout 1 s. Not real sockets.',
  );
}

function seededFor(name: string) {
  let s = 0;
  for (const c of name) s = (s * 31 + c.charCodeAt(0)) >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

await etcdPart();
await pickPart();
simPart();

const width = Math.max(...rows.map((r) => r.name.length));
console.log(`\n${'case'.padEnd(width)}  ${'value'.padStart(10)}  unit      target / pass`);
for (const r of rows) {
  const v = Math.abs(r.value) >= 100 ? r.value.toFixed(0) : r.value.toFixed(2);
  const t = r.target ? `${r.target} ${r.pass ? 'PASS' : 'FAIL'}` : '';
  console.log(`${r.name.padEnd(width)}  ${v.padStart(10)}  ${r.unit.padEnd(8)}  ${t}`);
}
for (const n of notes) console.log(`note: ${n}`);
writeResult({
  area: 'discovery',
  title: 'Discovery: etcd registration visibility, resolve + pick cost, load-balancing simulation',
  setup:
    'etcd 3.4 on loopback (testing/engines.ts); static resolver with 10 instances; virtual-time simulation.',
  rows,
  notes,
});
