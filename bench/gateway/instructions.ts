/**
 * Gateway cost in instructions per proxied request: each proxy of bench/gateway/main.ts (the
 * same bench/gateway/server.ts processes) under Valgrind's callgrind, which counts every
 * instruction the proxy process executes in user space, on all of its threads. Unlike req/s and
 * req/CPU-s this does not move with the load other processes put on the machine (see
 * bench/server/instructions.ts and decision 0202 for the method and what the count leaves out:
 * kernel time, cache misses, waiting).
 *
 *   npx turbo run build --filter=@trellis/gateway && npx tsx bench/gateway/instructions.ts
 *
 * Env: BENCH_IR_ONLY=a,b (fast-gateway, fastify-http-proxy, bare, trellis, trellis-before);
 * BENCH_IR_WARMUP requests (default 6000) to warm the JIT, then BENCH_IR_WINDOWS (default 3)
 * windows of BENCH_IR_REQUESTS (default 2000) requests over BENCH_CONNECTIONS (default 50)
 * keep-alive connections; counters zeroed (`callgrind_control -z`) and read
 * (`callgrind_control -e`) while the proxy is idle, so a window holds exactly its own requests.
 * The median window counts; the spread between windows is printed. BENCH_IR_PARALLEL (default
 * 2) proxies are counted at once (the counts do not depend on the CPU they get).
 * BENCH_GATEWAY_BEFORE adds `trellis-before`, as in main.ts.
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { type BenchRow, median, writeResult } from '../lib/report.js';

const WARMUP = Number(process.env.BENCH_IR_WARMUP ?? 6_000);
const REQUESTS = Number(process.env.BENCH_IR_REQUESTS ?? 2_000);
const WINDOWS = Number(process.env.BENCH_IR_WINDOWS ?? 3);
const PARALLEL = Number(process.env.BENCH_IR_PARALLEL ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ONLY = (process.env.BENCH_IR_ONLY ?? '').split(',').filter(Boolean);
const BEFORE = process.env.BENCH_GATEWAY_BEFORE;
const here = import.meta.dirname;
const execFileAsync = promisify(execFile);

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

function startServer(
  script: string,
  args: string[],
  valgrindOut?: string,
): Promise<{ child: ChildProcess; port: number }> {
  return freePort().then((port) => {
    const node = ['--import', 'tsx', script, ...args.slice(0, 1), String(port), ...args.slice(1)];
    const child = valgrindOut
      ? spawn(
          'valgrind',
          [
            '--tool=callgrind',
            `--callgrind-out-file=${valgrindOut}`,
            '--vgdb=yes',
            process.execPath,
            ...node,
          ],
          { cwd: dirname(script), stdio: ['ignore', 'pipe', 'pipe'], env: process.env },
        )
      : spawn(process.execPath, node, {
          cwd: dirname(script),
          stdio: ['ignore', 'pipe', 'inherit'],
          env: { ...process.env, NODE_ENV: 'production' },
        });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d;
    });
    return new Promise((resolve, reject) => {
      child.once('exit', (code) =>
        reject(new Error(`${args[0]} exited with ${code}:\n${stderr.slice(-2000)}`)),
      );
      child.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('ready')) resolve({ child, port });
      });
    });
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(timer);
}

function fetchText(agent: Agent, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path: '/api/hello', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () =>
        res.statusCode === 200 ? resolve(body) : reject(new Error(`status ${res.statusCode}`)),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}

async function load(agent: Agent, port: number, n: number): Promise<void> {
  let sent = 0;
  const worker = async () => {
    while (sent < n) {
      sent++;
      const body = await fetchText(agent, port);
      if (body !== 'hello world') throw new Error(`unexpected body: ${body.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECTIONS, n) }, worker));
}

async function readTotals(pid: number): Promise<{ total: number; main: number }> {
  const { stdout } = await execFileAsync('callgrind_control', ['-e', String(pid)]);
  const threads = [...stdout.matchAll(/^\s*Th\s*(\d+)\s+([\d,]+)\s*$/gm)].map((m) => ({
    tid: Number(m[1]),
    ir: Number((m[2] as string).replace(/,/g, '')),
  }));
  if (threads.length === 0) throw new Error(`cannot parse callgrind_control -e:\n${stdout}`);
  return {
    total: threads.reduce((s, t) => s + t.ir, 0),
    main: threads.find((t) => t.tid === 1)?.ir ?? 0,
  };
}

interface Counted {
  total: number[];
  main: number[];
}

async function measure(
  name: string,
  script: string,
  kind: string,
  upstreamPort: number,
  outDir: string,
): Promise<Counted> {
  const { child, port } = await startServer(
    script,
    [kind, String(upstreamPort)],
    join(outDir, `${name}.%p`),
  );
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  try {
    const pid = child.pid as number;
    await load(agent, port, WARMUP);
    const total: number[] = [];
    const main: number[] = [];
    for (let w = 0; w < WINDOWS; w++) {
      await execFileAsync('callgrind_control', ['-z', String(pid)]);
      await load(agent, port, REQUESTS);
      const t = await readTotals(pid);
      total.push(t.total / REQUESTS);
      main.push(t.main / REQUESTS);
    }
    return { total, main };
  } finally {
    agent.destroy();
    await stop(child);
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

if (spawnSync('valgrind', ['--version']).error || spawnSync('callgrind_control', ['-h']).error) {
  throw new Error('bench/gateway/instructions.ts needs valgrind (apt-get install valgrind)');
}
const targets: Record<string, [string, string]> = {
  'fast-gateway': [join(here, 'server.ts'), 'fast-gateway'],
  'fastify-http-proxy': [join(here, 'server.ts'), 'fastify-http-proxy'],
  bare: [join(here, 'server.ts'), 'bare'],
  trellis: [join(here, 'server.ts'), 'trellis'],
};
if (BEFORE) targets['trellis-before'] = [BEFORE, 'trellis'];
const queue = Object.keys(targets).filter((n) => ONLY.length === 0 || ONLY.includes(n));
const results = new Map<string, Counted>();
const outDir = mkdtempSync(join(tmpdir(), 'trellis-gw-ir-'));
const upstream = await startServer(join(here, 'server.ts'), ['upstream']);
const t0 = Date.now();
try {
  const next = [...queue];
  const worker = async () => {
    for (let n = next.shift(); n !== undefined; n = next.shift()) {
      const [script, kind] = targets[n] as [string, string];
      const r = await measure(n, script, kind, upstream.port, outDir);
      results.set(n, r);
      console.log(
        `${n.padEnd(20)} ${r.total.map(fmt).join(' / ')} instructions/request (main thread ${r.main.map(fmt).join(' / ')})  [${((Date.now() - t0) / 1000).toFixed(0)} s]`,
      );
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, worker));
} finally {
  await stop(upstream.child);
  rmSync(outDir, { recursive: true, force: true });
}

const rows: BenchRow[] = [];
const t = results.get('trellis');
console.log(
  '\nmedian window; ratio = peer ÷ trellis (above 1: Trellis executes fewer instructions)',
);
for (const name of queue) {
  const r = results.get(name);
  if (!r) continue;
  const all = median(r.total);
  const main = median(r.main);
  const spread = Math.max(...r.total.map((x) => Math.abs(x / all - 1))) * 100;
  const ratio = t && name !== 'trellis' ? all / median(t.total) : undefined;
  const mainRatio = t && name !== 'trellis' ? main / median(t.main) : undefined;
  console.log(
    `  ${name.padEnd(20)} ${fmt(all).padStart(10)} instr/request  main thread ${fmt(main).padStart(10)}  windows ±${spread.toFixed(1)} %${ratio !== undefined ? `   ${name} ÷ trellis ${ratio.toFixed(2)}× (main thread ${(mainRatio as number).toFixed(2)}×)` : ''}`,
  );
  rows.push({
    name: `${name} instructions per request`,
    value: Math.round(all),
    unit: 'instructions/request',
    ...(ratio !== undefined ? { peer: name, ratio: Number(ratio.toFixed(3)) } : {}),
  });
  rows.push({
    name: `${name} instructions per request, main thread`,
    value: Math.round(main),
    unit: 'instructions/request',
  });
}
writeResult({
  area: 'gateway-instructions',
  title: 'API gateway instructions per proxied request (callgrind)',
  command: 'npx tsx bench/gateway/instructions.ts',
  setup: `Node ${process.version}; each proxy of bench/gateway/server.ts under valgrind --tool=callgrind; ${WARMUP} warm-up requests, then ${WINDOWS} windows of ${REQUESTS} GET /api/hello over ${CONNECTIONS} keep-alive node:http connections, counters zeroed and read while idle; median window, all threads. The ratio is peer ÷ trellis.`,
  rows,
});
