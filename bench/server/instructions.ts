/**
 * Server instrumentation cost in instructions per request: the same apps as bench/server/main.ts
 * (bench/server/apps.ts), each run under Valgrind's callgrind, which counts every instruction
 * the process executes in user space, on all of its threads.
 *
 *   npx turbo run build --filter=@trellis/core && npx tsx bench/server/instructions.ts
 *   BENCH_SERVER_NODE=/path/to/node24 npx tsx bench/server/instructions.ts
 *
 * Why a count and not time: on the development machine a hello-world's CPU time per request
 * moves by 15-20 % between processes of the same app, and with changes that add no per-request
 * work (what else is on the heap), which is more than the 10 % budget (decision 0201). The number
 * of instructions a request executes does not depend on heap layout, caches, the TLB or what
 * else the machine runs: two processes of the same app agree to well under 1 % (the A/A row),
 * so a 10 % budget can be read. Decision 0202 says what the count leaves out.
 *
 * Method. Per app, a fresh process under `valgrind --tool=callgrind`, BENCH_IR_WARMUP requests
 * (default 30000; on Node 24, 10000 left Express with Trellis still compiling through the first
 * two windows) to warm the JIT, then BENCH_IR_WINDOWS windows (default 3) of BENCH_IR_REQUESTS
 * requests (default 4000) each. The counters are zeroed while the server is idle
 * (`callgrind_control -z`), the window's requests are sent over BENCH_CONNECTIONS (default 50)
 * keep-alive connections, and the totals are read while it is idle again
 * (`callgrind_control -e`), so a window holds exactly its own requests. Instructions per
 * request = a window's total ÷ its requests, over all threads and on the main thread alone; the
 * median window counts. The main thread's count is steady from window to window; V8's
 * background threads (late JIT compiles, concurrent marking) come in lumps that a window does
 * not average out, which the median leaves out and the printed spread between windows shows.
 * Every response is checked, and afterwards each instrumented app's /metrics must have counted
 * every request, so an app that skips its work cannot pass.
 * BENCH_IR_PARALLEL (default 2) apps run at once: the counts do not depend on the CPU they get.
 */
import { type ChildProcess, execFile, fork, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { Agent, get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type BenchRow, median, writeResult } from '../lib/report.js';
import {
  type Framework,
  HELLO_PATH,
  SERVER_FLAGS,
  SERVER_NODE,
  serverRun,
  type Variant,
  variants,
} from './apps.js';

const WARMUP = Number(process.env.BENCH_IR_WARMUP ?? 30_000);
const REQUESTS = Number(process.env.BENCH_IR_REQUESTS ?? 4_000);
const WINDOWS = Number(process.env.BENCH_IR_WINDOWS ?? 3);
const PARALLEL = Number(process.env.BENCH_IR_PARALLEL ?? 2);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
/** Only these apps (comma-separated variant names); the default is all of them. */
const ONLY = (process.env.BENCH_IR_ONLY ?? '').split(',').filter(Boolean);
const TARGET = 0.9;

const execFileAsync = promisify(execFile);

/** Per variant: the metric that must have counted every request, and its route label. */
const trellisCount =
  /^http_server_request_duration_seconds_count\{[^}]*http_route="\/hello\/:name"[^}]*\} (\d+)$/m;
const countedBy: Partial<Record<Variant, RegExp>> = {
  'express-trellis': trellisCount,
  'express-trellis-noctx': trellisCount,
  'fastify-trellis': trellisCount,
  'fastify-trellis-noctx': trellisCount,
  // express-prom-bundle labels the request's path (numbers and ids in it normalised), not the
  // route template.
  'express-prom-bundle':
    /^http_request_duration_seconds_count\{[^}]*path="\/hello\/world"[^}]*\} (\d+)$/m,
  'fastify-metrics':
    /^http_request_duration_seconds_count\{[^}]*route="\/hello\/:name"[^}]*\} (\d+)$/m,
};

interface Counted {
  variant: Variant;
  node: string;
  /** Instructions per request, all threads, per window. */
  total: number[];
  /** Instructions per request on the main thread, per window. */
  main: number[];
  /** The response's header names (lower case, sorted): what the kernel is given to send. */
  headers: string;
}

function checkTools(): void {
  for (const [bin, arg] of [
    ['valgrind', '--version'],
    ['callgrind_control', '-h'],
  ] as const) {
    if (spawnSync(bin, [arg]).error) {
      throw new Error(`bench/server/instructions.ts needs ${bin} (apt-get install valgrind)`);
    }
  }
}

/** GET `path` once and return the body; throws on a non-200 status. */
function fetchText(
  agent: Agent,
  port: number,
  path: string,
  onHeaders?: (names: string[]) => void,
): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent }, (res) => {
      onHeaders?.(Object.keys(res.headers));
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        body += d;
      });
      res.on('end', () =>
        res.statusCode === 200
          ? resolve(body)
          : reject(new Error(`GET ${path}: status ${res.statusCode}: ${body.slice(0, 200)}`)),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}

/** `n` requests for HELLO_PATH over CONNECTIONS keep-alive connections; checks every answer. */
async function load(agent: Agent, port: number, n: number): Promise<void> {
  let sent = 0;
  const worker = async () => {
    while (sent < n) {
      sent++;
      const body = await fetchText(agent, port, HELLO_PATH);
      if (body !== '{"hello":"world"}') throw new Error(`unexpected body: ${body.slice(0, 200)}`);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONNECTIONS, n) }, worker));
}

/** The per-thread instruction totals since the last zeroing, from `callgrind_control -e`. */
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

/**
 * Stops a server: SIGINT, on which the app exits, so valgrind ends normally and removes its vgdb
 * FIFOs from the temp folder (SIGKILL would leave them behind); SIGKILL if it has not exited
 * after 60 s.
 */
async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  await exited;
  clearTimeout(timer);
}

async function measure(variant: Variant, outDir: string): Promise<Counted> {
  const nodeBin = SERVER_NODE ?? process.execPath;
  const child: ChildProcess = fork(join(import.meta.dirname, 'apps.ts'), ['serve', variant], {
    stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
    execPath: 'valgrind',
    execArgv: [
      '--tool=callgrind',
      `--callgrind-out-file=${join(outDir, `${variant}.%p`)}`,
      '--vgdb=yes',
      nodeBin,
      ...SERVER_FLAGS,
      ...process.execArgv,
    ],
  });
  let stderr = '';
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const agent = new Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  try {
    const started = once(child, 'message');
    const exited = once(child, 'exit').then(([code]) => {
      throw new Error(`${variant} exited (${code}) before it listened:\n${stderr.slice(-2000)}`);
    });
    const [msg] = (await Promise.race([started, exited])) as [{ port: number; node: string }];
    const pid = child.pid as number;
    await load(agent, msg.port, WARMUP);
    const total: number[] = [];
    const main: number[] = [];
    for (let w = 0; w < WINDOWS; w++) {
      // Zeroed and read while the server is idle (vgdb interrupts its epoll_wait), so a window
      // holds exactly its own requests.
      await execFileAsync('callgrind_control', ['-z', String(pid)]);
      await load(agent, msg.port, REQUESTS);
      const t = await readTotals(pid);
      total.push(t.total / REQUESTS);
      main.push(t.main / REQUESTS);
    }
    // The warm-up, the windows, and the one request below that reads the response's headers.
    const expected = WARMUP + WINDOWS * REQUESTS + 1;
    let headers = '';
    await fetchText(agent, msg.port, HELLO_PATH, (names) => {
      headers = names.sort().join(' ');
    });
    const pattern = countedBy[variant];
    if (pattern) {
      const text = await fetchText(agent, msg.port, '/metrics');
      const counted = Number(pattern.exec(text)?.[1]);
      if (counted !== expected) {
        throw new Error(`${variant}: /metrics counted ${counted} requests, ${expected} were sent`);
      }
    }
    return { variant, node: msg.node, total, main, headers };
  } finally {
    agent.destroy();
    await stop(child);
  }
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  checkTools();
  const outDir = mkdtempSync(join(tmpdir(), 'trellis-ir-'));
  const queue = variants.filter((v) => ONLY.length === 0 || ONLY.includes(v));
  const results = new Map<Variant, Counted>();
  const t0 = Date.now();
  try {
    const next = [...queue];
    const worker = async () => {
      for (let v = next.shift(); v !== undefined; v = next.shift()) {
        const r = await measure(v, outDir);
        results.set(v, r);
        console.log(
          `${v.padEnd(22)} ${r.total.map(fmt).join(' / ')} instructions/request (main thread ${r.main.map(fmt).join(' / ')})  [${((Date.now() - t0) / 1000).toFixed(0)} s]`,
        );
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
  } finally {
    rmSync(outDir, { recursive: true, force: true });
  }

  const node = [...results.values()][0]?.node ?? process.version;
  // The median window, over all threads and on the main thread; the spread is the farthest
  // window from the median, over all threads.
  const allOf = (r: Counted) => median(r.total);
  const mainOf = (r: Counted) => median(r.main);
  const spread = (r: Counted) => Math.max(...r.total.map((x) => Math.abs(x / allOf(r) - 1))) * 100;
  const rows: BenchRow[] = [];
  const table: string[][] = [
    [
      'app',
      'instr/request',
      'main thread',
      'windows ±',
      'bare ÷ app',
      'main: bare ÷ app',
      'target',
      'met',
    ],
  ];
  const labels: Record<string, string> = {
    bare2: "a second bare process (A/A: the method's noise)",
    als: 'one AsyncLocalStorage.run per request, no Trellis (the floor of any request context)',
    trellis: 'Trellis: metrics + no-op tracing + health + request context',
    'trellis-noctx': 'Trellis, requestContext: false',
    'prom-bundle': 'the peer express-prom-bundle (metrics only)',
    metrics: 'the peer fastify-metrics (metrics only)',
  };
  for (const fw of ['express', 'fastify'] as Framework[]) {
    const bare = results.get(`${fw}-bare` as Variant);
    if (!bare) continue;
    table.push([
      `${fw} bare`,
      fmt(allOf(bare)),
      fmt(mainOf(bare)),
      `${spread(bare).toFixed(2)} %`,
      '',
      '',
      '',
      '',
    ]);
    rows.push({
      name: `${fw} bare (${node})`,
      value: Math.round(allOf(bare)),
      unit: 'instructions/request',
    });
    const compare = (v: Variant, base: Counted, label: string, baseName: string) => {
      const r = results.get(v);
      if (!r) return;
      const ratio = allOf(base) / allOf(r);
      const mainRatio = mainOf(base) / mainOf(r);
      const judged = v.includes('trellis');
      table.push([
        `${v}${baseName === 'bare' ? '' : ` vs ${baseName}`}`,
        fmt(allOf(r)),
        fmt(mainOf(r)),
        `${spread(r).toFixed(2)} %`,
        ratio.toFixed(3),
        mainRatio.toFixed(3),
        judged ? `≥ ${TARGET.toFixed(2)}` : '',
        // Both figures are judged (decision 0202).
        judged ? (ratio >= TARGET && mainRatio >= TARGET ? 'yes' : 'NO') : '',
      ]);
      rows.push({
        name: `${fw}: ${label} (${node})`,
        value: Math.round(allOf(r)),
        unit: `instructions/request (ratio: ${baseName} ÷ this)`,
        peer: `${fw} ${baseName}`,
        ratio: Number(ratio.toFixed(3)),
        ...(judged && { target: `≥ ${TARGET.toFixed(2)}`, pass: ratio >= TARGET }),
      });
      rows.push({
        name: `${fw}: ${label}, main thread only (${node})`,
        value: Math.round(mainOf(r)),
        unit: `instructions/request on the main thread (ratio: ${baseName} ÷ this)`,
        peer: `${fw} ${baseName}`,
        ratio: Number(mainRatio.toFixed(3)),
        ...(judged && { target: `≥ ${TARGET.toFixed(2)}`, pass: mainRatio >= TARGET }),
      });
    };
    for (const suffix of Object.keys(labels)) {
      compare(`${fw}-${suffix}` as Variant, bare, labels[suffix] as string, 'bare');
    }
    const floor = results.get(`${fw}-als` as Variant);
    if (floor) {
      compare(
        `${fw}-trellis` as Variant,
        floor,
        'Trellis with its context against the floor',
        'floor',
      );
    }
  }
  // Trellis must hand the kernel the same response as the bare app (no header of its own by
  // default), or the kernel's share of the work would differ, which the count does not see.
  const headerNotes: string[] = [];
  for (const [v, r] of results) {
    const bare = results.get(`${v.split('-')[0]}-bare` as Variant);
    if (bare && r.headers !== bare.headers) {
      headerNotes.push(`${v} answers with headers [${r.headers}], bare with [${bare.headers}]`);
    }
  }
  if (headerNotes.length === 0)
    headerNotes.push('every app answers with the same header names as its bare app');
  const widths = (table[0] ?? []).map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  console.log(
    `\nservers on ${serverRun('server-instructions', node).runtime}, instructions per request (callgrind)`,
  );
  for (const r of table) console.log(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '));
  for (const n of headerNotes) console.log(n);

  if (ONLY.length > 0) return; // a partial run writes no result file
  const { area, command, runtime } = serverRun('server-instructions', node);
  writeResult({
    area,
    command,
    title: `Server instrumentation cost in instructions per request (callgrind), servers on ${runtime}`,
    setup: `hello-world GET /hello/:name; each app in a fresh process under valgrind --tool=callgrind; ${WARMUP} warm-up requests, then ${WINDOWS} windows of ${REQUESTS} requests over ${CONNECTIONS} keep-alive connections, counters zeroed and read while the server is idle; instructions per request = the median window's user-space instructions on all threads ÷ its requests; every response checked, and /metrics must have counted every request`,
    rows,
    notes: [
      `Response headers: ${headerNotes.join('; ')}.`,
      'A count of instructions, not time: it leaves out the kernel (system calls, the TCP stack) and what instructions cost in cycles (cache and TLB misses). The kernel work per request is the same for every app here (same response, same connections), so leaving it out makes the ratio against bare a conservative reading of the throughput ratio. Decision 0202.',
      'trellis = createMetrics() (default Node metrics on) + the adapter with tracing on but no OpenTelemetry SDK installed (no-op tracer) + createHealth() attached to the server; noctx = the same with requestContext: false. floor = the bare app plus one AsyncLocalStorage.run per request.',
      'Under callgrind a request takes about 100 times as long as natively (85-120 times in these runs), so work done per unit of time (timers, the event-loop delay monitor of the default metrics) weighs about 100 times more per request than it does natively: this too errs against the instrumented apps.',
    ],
  });
}

await main();
