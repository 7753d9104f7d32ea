/**
 * Gateway throughput and latency, in the same run, against the same upstream (a bare
 * `node:http` server): direct, nginx (keep-alive upstream), fast-gateway 3, @fastify/http-proxy,
 * a bare node:http + undici `Pool.dispatch` proxy (the limit of this stack: no features) and the
 * Trellis gateway (request id, metrics, one route, breaker and retry budget on).
 *
 *   npx turbo run build --filter=@trellis/gateway && npx tsx bench/gateway/main.ts
 *
 * Setup: every server runs in its own process; on a machine with 2+ cores the proxy under test is
 * pinned to CPU 1 and wrk (1 thread, 50 connections) and the upstream to CPU 0 (`taskset`), so
 * the proxy gets one core to itself, as a single-threaded Node process would in production.
 * Every target runs in interleaved rounds (BENCH_ROUNDS, default 5, of BENCH_DURATION s, default
 * 4, each; the Node proxies start afresh every round, so only one proxy runs at a time); the
 * median round counts and the spread (min-max of the rounds) is printed. Env: BENCH_CONNECTIONS
 * (default 50); BENCH_WARMUP (s, default 2); BENCH_PIN=0 runs everything unpinned (wrk, upstream and proxy share every core,
 * as most users run a proxy); BENCH_ONLY=a,b keeps only those targets (direct, nginx,
 * fast-gateway, fastify-http-proxy, bare, trellis, trellis-before).
 *
 * Before/after: BENCH_GATEWAY_BEFORE names the bench server of another checkout of this repo
 * (its own node_modules and built packages/gateway/dist), e.g. the tree before the pipeline
 * rewrite:
 *
 *   git worktree add /work/wt/gateway-before 806042c
 *   cp -al node_modules /work/wt/gateway-before/node_modules
 *   (cd /work/wt/gateway-before && npx turbo run build --filter=@trellis/gateway)
 *   BENCH_GATEWAY_BEFORE=/work/wt/gateway-before/bench/gateway-server.ts npx tsx bench/gateway/main.ts
 *
 * adds a `trellis-before` row (that server's `trellis` kind, same arguments) next to `trellis`.
 * Without the variable the row is left out.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { type BenchRow, writeResult } from '../lib/report.js';

const here = import.meta.dirname;
const duration = Number(process.env.BENCH_DURATION ?? 4);
const rounds = Number(process.env.BENCH_ROUNDS ?? 5);
const warmup = Number(process.env.BENCH_WARMUP ?? 2);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 50);
const pin = process.env.BENCH_PIN !== '0' && cpus().length >= 2 && hasBinary('taskset');
const only = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
const beforeServer = process.env.BENCH_GATEWAY_BEFORE;
const children: ChildProcess[] = [];

function hasBinary(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

function pinned(cpu: number, cmd: string, args: string[]): [string, string[]] {
  return pin ? ['taskset', ['-c', String(cpu), cmd, ...args]] : [cmd, args];
}

async function startNode(
  kind: string,
  cpu: number,
  upstreamPort?: number,
  script = join(here, 'server.ts'),
): Promise<Started> {
  const port = await freePort();
  const args = ['--import', 'tsx', script, kind, String(port)];
  if (upstreamPort !== undefined) args.push(String(upstreamPort));
  const [cmd, argv] = pinned(cpu, process.execPath, args);
  const child = spawn(cmd, argv, {
    cwd: dirname(script),
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
  });
  return {
    port,
    pid: child.pid as number,
    stop: async () => {
      child.kill('SIGINT');
      if (child.exitCode === null && child.signalCode === null) await once(child, 'exit');
    },
  };
}

/** A running target; `stop` is set for the ones started afresh each round. */
interface Started {
  port: number;
  pid: number;
  stop?: () => Promise<void>;
}

async function startNginx(
  upstreamPort: number,
  cpu: number,
): Promise<{ port: number; dir: string; pid: number }> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-nginx-'));
  writeFileSync(
    join(dir, 'nginx.conf'),
    `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream up { server 127.0.0.1:${upstreamPort}; keepalive 128; }
  server {
    listen 127.0.0.1:${port};
    keepalive_requests 1000000;
    location / {
      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`,
  );
  const [cmd, argv] = pinned(cpu, 'nginx', [
    '-p',
    dir,
    '-e',
    join(dir, 'error.log'),
    '-c',
    join(dir, 'nginx.conf'),
    '-g',
    'daemon off;',
  ]);
  const child = spawn(cmd, argv, { stdio: 'inherit' });
  children.push(child);
  for (let i = 0; i < 50; i++) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/api/hello`);
      await r.text();
      if (r.ok) break;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return { port, dir, pid: child.pid as number };
}

/** user + system CPU seconds of the processes `pids` and their children (Linux /proc). */
function cpuSeconds(pids: readonly number[]): number {
  let ticks = 0;
  const seen = new Set<number>();
  const visit = (pid: number): void => {
    if (seen.has(pid)) return;
    seen.add(pid);
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]); // utime, stime
      const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim();
      for (const c of children.split(' ')) if (c) visit(Number(c));
    } catch {
      // process gone or no /proc: counts as 0
    }
  };
  for (const p of pids) visit(p);
  return ticks / 100; // USER_HZ
}

interface Load {
  /** Requests per second of CPU time the server process(es) used: load-independent efficiency. */
  perCpuSecond?: number;
  cpu?: number;
  requests?: number;
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

function toMs(v: string): number {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return Number.NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
}

function wrk(port: number, seconds: number): Load {
  const [cmd, argv] = pinned(0, 'wrk', [
    '-t1',
    `-c${connections}`,
    `-d${seconds}s`,
    '--latency',
    `http://127.0.0.1:${port}/api/hello`,
  ]);
  const out = execFileSync(cmd, argv, { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p50 = toMs(/^\s+50%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const p99 = toMs(/^\s+99%\s+(\S+)/m.exec(out)?.[1] ?? '');
  const errs = /Non-2xx or 3xx responses:\s+(\d+)/.exec(out);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const errors =
    Number(errs?.[1] ?? 0) + (sock ? sock.slice(1).reduce((a, b) => a + Number(b), 0) : 0);
  return { rps, p50, p99, errors };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

/**
 * Interleaved rounds (every target once per round) and the median per target, so a burst of
 * load from something else on the machine hits every target alike instead of one of them. The
 * Node proxies start afresh for every round: one process of the same proxy can sit in a slow
 * or a fast mode for its whole life (p99 6 ms in one process, 15 ms in the next), so rounds in
 * one process would measure that process's luck, not the proxy.
 */
async function measureAll(
  targets: Record<string, () => Promise<Started>>,
): Promise<Record<string, Load>> {
  const runs: Record<string, Load[]> = {};
  for (let round = 0; round < rounds; round++) {
    for (const [name, start] of Object.entries(targets)) {
      const target = await start();
      wrk(target.port, warmup); // warm-up: JIT, keep-alive pools
      const cpuBefore = cpuSeconds([target.pid]);
      const r = wrk(target.port, duration);
      r.cpu = cpuSeconds([target.pid]) - cpuBefore;
      r.requests = r.rps * duration;
      await target.stop?.();
      const list = runs[name] ?? [];
      list.push(r);
      runs[name] = list;
    }
  }
  const out: Record<string, Load> = {};
  for (const [name, list] of Object.entries(runs)) {
    const r: Load = {
      rps: median(list.map((l) => l.rps)),
      p50: median(list.map((l) => l.p50)),
      p99: median(list.map((l) => l.p99)),
      errors: list.reduce((a, l) => a + l.errors, 0),
      perCpuSecond:
        list.reduce((a, l) => a + (l.requests ?? 0), 0) /
        Math.max(
          1e-9,
          list.reduce((a, l) => a + (l.cpu ?? 0), 0),
        ),
    };
    out[name] = r;
    console.log(
      `${name.padEnd(22)} ${r.rps.toFixed(0).padStart(8)} req/s   p50 ${r.p50.toFixed(2).padStart(6)} ms   p99 ${r.p99.toFixed(2).padStart(6)} ms   ${(r.perCpuSecond ?? 0).toFixed(0).padStart(6)} req/CPU-s${r.errors ? `   errors ${r.errors}` : ''}   (rounds ${Math.min(...list.map((l) => l.rps)).toFixed(0)}-${Math.max(...list.map((l) => l.rps)).toFixed(0)}: ${list.map((l) => l.rps.toFixed(0)).join(', ')}; p99 ${Math.min(...list.map((l) => l.p99)).toFixed(2)}-${Math.max(...list.map((l) => l.p99)).toFixed(2)} ms)`,
    );
  }
  return out;
}

let results: Record<string, Load> = {};
let nginxDir: string | undefined;
try {
  const upstream = await startNode('upstream', 0);
  const upstreamPort = upstream.port;
  // The upstream and nginx stay up for the whole run (no `stop`).
  const targets: Record<string, () => Promise<Started>> = {
    direct: async () => ({ port: upstream.port, pid: upstream.pid }),
  };
  if (hasBinary('nginx')) {
    const ng = await startNginx(upstreamPort, 1);
    nginxDir = ng.dir;
    targets.nginx = async () => ng;
  }
  for (const kind of ['fast-gateway', 'fastify-http-proxy', 'bare', 'trellis']) {
    targets[kind] = () => startNode(kind, 1, upstreamPort);
  }
  if (beforeServer) {
    targets['trellis-before'] = () => startNode('trellis', 1, upstreamPort, beforeServer);
  }
  if (only.length > 0) {
    for (const name of Object.keys(targets)) if (!only.includes(name)) delete targets[name];
  }
  results = await measureAll(targets);
} finally {
  for (const c of children) c.kill();
  if (nginxDir) rmSync(nginxDir, { recursive: true, force: true });
}

const t = results.trellis;
const rows: BenchRow[] = [];
for (const [name, r] of Object.entries(results)) {
  rows.push({
    name: `${name} throughput`,
    value: Math.round(r.rps),
    unit: 'req/s',
    chart: 'gateway req/s',
  });
  rows.push({ name: `${name} p50`, value: r.p50, unit: 'ms' });
  rows.push({ name: `${name} p99`, value: r.p99, unit: 'ms' });
  rows.push({
    name: `${name} requests per CPU-second`,
    value: Math.round(r.perCpuSecond ?? 0),
    unit: 'req/CPU-s',
  });
}
console.log('\nratios (Trellis ÷ peer for req/s and req/CPU-s; peer ÷ Trellis for p99):');
/** Targets per peer: req/s, p99 (peer ÷ trellis) and req/CPU-s; undefined = printed only. */
const TARGETS: Record<string, { rps?: number; p99?: number; cpu?: number }> = {
  'fast-gateway': { rps: 1.5, p99: 1, cpu: 1.8 },
  'fastify-http-proxy': { rps: 1.5, p99: 1 },
  bare: { cpu: 0.9 },
  'trellis-before': {},
};
for (const [peer, goal] of Object.entries(TARGETS)) {
  const p = results[peer];
  if (t === undefined || p === undefined) continue;
  const rpsRatio = t.rps / p.rps;
  const p99Ratio = p.p99 / t.p99;
  const cpuRatio = (t.perCpuSecond ?? 0) / (p.perCpuSecond ?? 1);
  const ratio = (what: string, value: number, target: number | undefined, unit = '×') => {
    rows.push({
      name: `trellis vs ${peer} ${what}`,
      value,
      unit,
      peer,
      ratio: value,
      ...(target !== undefined ? { target: `≥ ${target}×`, pass: value >= target } : {}),
    });
  };
  ratio('throughput', rpsRatio, goal.rps);
  ratio('p99 (peer ÷ trellis)', p99Ratio, goal.p99);
  ratio('requests per CPU-second', cpuRatio, goal.cpu);
  const mark = (v: number, g: number | undefined) =>
    g === undefined ? '' : ` (target ≥ ${g}×: ${v >= g ? 'met' : 'NOT met'})`;
  console.log(
    `  vs ${peer.padEnd(20)} req/s ${rpsRatio.toFixed(2)}×${mark(rpsRatio, goal.rps)}   p99 ${p99Ratio.toFixed(2)}×${mark(p99Ratio, goal.p99)}   req/CPU-s ${cpuRatio.toFixed(2)}×${mark(cpuRatio, goal.cpu)}`,
  );
}
for (const base of ['direct', 'nginx']) {
  const b = results[base];
  if (b && t) console.log(`  trellis / ${base.padEnd(18)} req/s ${(t.rps / b.rps).toFixed(2)}×`);
}
const setup = `${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, Node ${process.version}; wrk -t1 -c${connections}, ${rounds} interleaved rounds of ${duration} s per target (median; each after a ${warmup} s warm-up, the Node proxies in a fresh process every round) on /api/hello; ${pin ? 'wrk and the upstream pinned to CPU 0, the proxy under test to CPU 1 (taskset)' : 'no CPU pinning'}; each server in its own process; upstream: bare node:http, 11-byte body, keep-alive.`;
/** What each contender does per request (the peers run with their defaults, one route each). */
const FEATURES: Record<string, string> = {
  direct: 'no proxy: wrk straight to the upstream',
  nginx: 'proxy_pass to a keep-alive upstream block; access_log off; no request id, no metrics',
  'fast-gateway': 'one prefix route (fast-proxy-lite); defaults; no request id, no metrics',
  bare: 'node:http + one undici Pool.dispatch per request; hop-by-hop headers dropped; nothing else (the limit of this stack)',
  'fastify-http-proxy':
    'one prefix route (@fastify/reply-from on undici); Fastify defaults (logger off); no request id sent upstream, no metrics',
  'trellis-before':
    'the Trellis gateway at the checkout BENCH_GATEWAY_BEFORE names (same config as trellis)',
  trellis:
    'one route; x-request-id generated and sent upstream and back; Prometheus metrics (server and upstream histograms); circuit breaker per instance and retry budget (defaults); OpenTelemetry API with no SDK registered; access log on with the default silent logger',
};
const features = Object.keys(results)
  .map((name) => `${name}: ${FEATURES[name] ?? '?'}`)
  .join('\n  ');
console.log(`\nsetup: ${setup}\nfeatures:\n  ${features}`);
writeResult({
  area: pin ? 'gateway' : 'gateway-unpinned',
  command: `${pin ? '' : 'BENCH_PIN=0 '}npx tsx bench/gateway/main.ts`,
  title: 'API gateway throughput and latency',
  setup: `${setup} Features: ${Object.keys(results)
    .map((name) => `${name}: ${FEATURES[name] ?? '?'}`)
    .join('; ')}.`,
  rows,
});
