/**
 * Server instrumentation cost: a bare Express 5 and a bare Fastify 5 hello-world against the
 * same apps with the Trellis adapter (`createMetrics()` + tracing with no OpenTelemetry SDK, i.e.
 * the no-op tracer, + `createHealth()` attached to the server).
 *
 *   npx turbo run build --filter=@trellis/core && npx tsx bench/server/main.ts
 *   BENCH_SERVER_NODE=/path/to/node24 npx tsx bench/server/main.ts   # servers on another Node
 *
 * This is the time-based view (absolute req/s and CPU, against the peers, on a real CPU). On the
 * development machine its per-process noise (±15 %) is larger than issue 4's 10 % budget, so the
 * budget is read in instructions per request by bench/server/instructions.ts (decision 0202).
 * The apps themselves are in bench/server/apps.ts.
 *
 * A reference app per framework enters one AsyncLocalStorage store per request and does nothing
 * else: the floor any per-request context costs on the runtime (10-16 % of the Fastify
 * hello-world on Node 20, whose AsyncLocalStorage hooks every promise). Trellis with its context
 * is also compared with that floor. `BENCH_SERVER_FLAGS` passes flags to the servers' Node, e.g.
 * `--experimental-async-context-frame` on Node 22.
 *
 * Method (interleaved). Per round and framework, every app (bare, a second bare, the floor,
 * trellis, trellis without the context, the peer) runs in a fresh process, all pinned to CPU 0
 * (`taskset`, when present), all alive at once but loaded one at a time: after a 2 s warm-up
 * each, BENCH_SLICES passes (default 4) give each app BENCH_SLICE_S seconds (default 1) under
 * wrk (`-t1 -c BENCH_CONNECTIONS`, CPU 1), every other pass in reverse order, and the start
 * order rotates from round to round. Drift of the shared machine slower than a few seconds (one
 * app measured alone drifted by up to 40 % between runs minutes apart) hits every app of the
 * round alike, and the apps never compete for the CPU. A round's ratio is the app's requests ÷ bare's (the same seconds under the same load),
 * or bare's CPU per request ÷ the app's (process.cpuUsage inside each server); the median of
 * BENCH_ROUNDS (default 10) rounds counts, because one process differs from the next (JIT, heap
 * layout) by several per cent. Each run also compares a second bare process with the bare one
 * (A/A), which shows the method's noise in that run.
 *
 * Earlier passes ran each app side by side with a bare app, both loaded at the same time. That
 * method carried artefacts from the two processes competing for one CPU: on Node 24 the one
 * started first used 20-25 % more CPU per request, and Fastify with Trellis measured above its
 * own floor in every round (decision 0201).
 */
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { type BenchRow, median, writeResult } from '../lib/report.js';
import {
  HELLO_PATH,
  SERVER_FLAGS,
  SERVER_NODE,
  serverRun,
  type Variant,
  variants,
} from './apps.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
/** Per round, each app is loaded SLICES times for SLICE_S seconds (alone, in turn). */
const SLICES = Number(process.env.BENCH_SLICES ?? 4);
const SLICE_S = Number(process.env.BENCH_SLICE_S ?? 1);

// ---------------------------------------------------------------------------------------------
// Load side.

const hasWrk = spawnSync('wrk', ['--version']).error === undefined;
const hasTaskset = spawnSync('taskset', ['--version']).error === undefined;

interface App {
  variant: Variant;
  child: ChildProcess;
  url: string;
  node: string;
}

async function start(variant: Variant): Promise<App> {
  const nodeBin = SERVER_NODE ?? process.execPath;
  const child = fork(join(import.meta.dirname, 'apps.ts'), ['serve', variant], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
    // Pinned to CPU 0 (the load generators get CPU 1).
    ...(hasTaskset
      ? {
          execPath: 'taskset',
          execArgv: ['-c', '0', nodeBin, ...SERVER_FLAGS, ...process.execArgv],
        }
      : { execPath: nodeBin, execArgv: [...SERVER_FLAGS, ...process.execArgv] }),
  });
  const [msg] = (await once(child, 'message')) as [{ port: number; node: string }];
  return { variant, child, url: `http://127.0.0.1:${msg.port}${HELLO_PATH}`, node: msg.node };
}

async function serverCpuUs(app: App): Promise<number> {
  const reply = once(app.child, 'message');
  app.child.send('cpu');
  const [usage] = (await reply) as [NodeJS.CpuUsage];
  return usage.user + usage.system;
}

/** wrk for `seconds` against `url` (pinned to CPU 1 when taskset exists); completed requests. */
function wrkAsync(url: string, seconds: number): Promise<number> {
  const args = ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, url];
  const child = hasTaskset ? spawn('taskset', ['-c', '1', 'wrk', ...args]) : spawn('wrk', args);
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d;
  });
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    err += d;
  });
  // 'close', not 'exit': the exit can come before the last of stdout has been read.
  return once(child, 'close').then(([code]) => {
    if (code !== 0) throw new Error(`wrk failed (${code}): ${err}`);
    if (/Non-2xx/.test(out)) throw new Error(`non-2xx responses:\n${out}`);
    const m = /(\d+) requests in/.exec(out);
    if (!m) throw new Error(`cannot parse wrk output:\n${out}`);
    return Number(m[1]);
  });
}

/** Ratios are kept per comparison: the app's name, or `app/base` when the base is not bare. */
const pairKey = (base: Variant, v: Variant): string =>
  base.endsWith('-bare') ? v : `${v}/${base}`;
/** What each app is compared with: its framework's bare app, and Trellis also with the floor. */
const comparisons: readonly (readonly [Variant, Variant])[] = [
  ...variants
    .filter((v) => !v.endsWith('-bare'))
    .map((v) => [`${v.split('-')[0]}-bare` as Variant, v] as const),
  ['express-als', 'express-trellis'],
  ['fastify-als', 'fastify-trellis'],
];

async function main(): Promise<void> {
  if (!hasWrk) throw new Error('bench/server/main.ts needs wrk (apt-get install wrk)');
  const rps = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const cpu = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  /** Per-round ratios against the base app of the same round. */
  const rpsRatios = new Map<string, number[]>(comparisons.map(([b, v]) => [pairKey(b, v), []]));
  const cpuRatios = new Map<string, number[]>(comparisons.map(([b, v]) => [pairKey(b, v), []]));
  let node = process.version;
  const running: App[] = [];

  /**
   * One round of a framework: a fresh process per app, all alive at once but loaded one at a
   * time, in SLICES passes of SLICE_S seconds each, every other pass in reverse order.
   */
  async function round(fw: 'express' | 'fastify', r: number) {
    const apps = variants.filter((v) => v.startsWith(`${fw}-`));
    // The start order rotates from round to round, so no app is always the first one started.
    for (let i = 0; i < apps.length; i++) {
      running.push(await start(apps[(i + r) % apps.length] as Variant));
    }
    node = running[0]?.node ?? node;
    for (const a of running) await wrkAsync(a.url, 2); // warm-up, each alone
    const total = new Map<Variant, { n: number; us: number }>(
      running.map((a) => [a.variant, { n: 0, us: 0 }]),
    );
    for (let k = 0; k < SLICES; k++) {
      for (const a of k % 2 ? [...running].reverse() : running) {
        const cpu0 = await serverCpuUs(a);
        const n = await wrkAsync(a.url, SLICE_S);
        const t = total.get(a.variant) as { n: number; us: number };
        t.us += (await serverCpuUs(a)) - cpu0;
        t.n += n;
      }
    }
    for (const a of running.splice(0)) {
      a.child.kill();
      await once(a.child, 'exit');
    }
    return total;
  }

  try {
    for (let r = 0; r < ROUNDS; r++) {
      for (const fw of ['express', 'fastify'] as const) {
        const m = await round(fw, r);
        for (const [variant, t] of m) {
          rps.get(variant)?.push(t.n / (SLICES * SLICE_S));
          cpu.get(variant)?.push(t.us / t.n);
        }
        const line: string[] = [];
        for (const [base, v] of comparisons) {
          const x = m.get(v);
          const b = m.get(base);
          if (x === undefined || b === undefined) continue;
          const rpsRatio = x.n / b.n; // the same seconds under the same load
          const cpuRatio = b.us / b.n / (x.us / x.n);
          rpsRatios.get(pairKey(base, v))?.push(rpsRatio);
          cpuRatios.get(pairKey(base, v))?.push(cpuRatio);
          line.push(`${pairKey(base, v)} ${rpsRatio.toFixed(3)}/${cpuRatio.toFixed(3)}`);
        }
        const us = [...m].map(([v, t]) => `${v} ${(t.us / t.n).toFixed(1)}`).join(', ');
        console.log(
          `round ${r + 1} ${fw}: req/s/CPU ratios ${line.join('  ')}  (µs CPU/req: ${us})`,
        );
      }
    }
  } finally {
    for (const a of running) a.child.kill();
  }

  const { area, command, runtime } = serverRun('server', node);
  // Only the run on this Node goes on the chart; runs on other binaries are tables only.
  const chart = area === 'server' ? { chart: 'server req/s' } : {};
  const rows: BenchRow[] = [];
  const table: string[][] = [
    ['app', 'req/s', 'µs CPU/req', 'req/s ratio', 'CPU ratio', 'target', 'pass (both)'],
  ];
  for (const fw of ['express', 'fastify'] as const) {
    const bareRps = median(rps.get(`${fw}-bare`) ?? []);
    const bareCpu = median(cpu.get(`${fw}-bare`) ?? []);
    rows.push(
      {
        name: `${fw} bare (${node})`,
        value: Math.round(bareRps),
        unit: 'req/s',
        ...chart,
      },
      {
        name: `${fw} bare CPU per request (${node})`,
        value: Number(bareCpu.toFixed(1)),
        unit: 'µs',
      },
    );
    table.push([`${fw} bare`, bareRps.toFixed(0), bareCpu.toFixed(1), '', '', '', '']);
    const peer = fw === 'express' ? 'prom-bundle' : 'metrics';
    for (const [suffix, label] of [
      ['bare2', `a second bare ${fw} process (A/A: the method's noise)`],
      [
        'als',
        `${fw} + one AsyncLocalStorage.run per request, no Trellis (the floor of any request context)`,
      ],
      ['trellis', 'metrics + no-op tracing + health + request context'],
      ['trellis-noctx', 'same, requestContext: false'],
      [peer, `the peer ${fw}-${peer} (metrics only)`],
    ] as const) {
      const v = `${fw}-${suffix}` as Variant;
      // Reference rows (the peer, the context floor) carry no target.
      const isReference = suffix === peer || suffix === 'als' || suffix === 'bare2';
      const r = median(rps.get(v) ?? []);
      const c = median(cpu.get(v) ?? []);
      const rpsRatio = median(rpsRatios.get(v) ?? []);
      const cpuRatio = median(cpuRatios.get(v) ?? []);
      const who =
        suffix === 'bare2'
          ? `second ${fw} bare`
          : suffix === 'als'
            ? `${fw} + AsyncLocalStorage`
            : isReference
              ? `${fw}-${peer}`
              : `${fw} + trellis`;
      const target = isReference ? {} : { target: '≥ 0.90' };
      rows.push(
        {
          name: isReference ? `${label} (${node})` : `${fw} + trellis: ${label} (${node})`,
          value: Math.round(r),
          unit: `req/s (ratio: ${who} ÷ bare, same seconds)`,
          peer: `${fw} bare`,
          ratio: Number(rpsRatio.toFixed(3)),
          ...target,
          ...(!isReference && { pass: rpsRatio >= 0.9 }),
          ...chart,
        },
        {
          name: isReference
            ? `${label}, CPU per request (${node})`
            : `${fw} + trellis CPU per request: ${label} (${node})`,
          value: Number(c.toFixed(1)),
          unit: `µs (ratio: bare ÷ ${who})`,
          peer: `${fw} bare`,
          ratio: Number(cpuRatio.toFixed(3)),
          ...target,
          ...(!isReference && { pass: cpuRatio >= 0.9 }),
        },
      );
      table.push([
        suffix === 'bare2'
          ? `${fw} bare again (A/A)`
          : suffix === 'als'
            ? `${fw} + ALS.run only (floor)`
            : isReference
              ? `${fw}-${peer} (peer)`
              : `${fw} + ${suffix}`,
        r.toFixed(0),
        c.toFixed(1),
        rpsRatio.toFixed(3),
        cpuRatio.toFixed(3),
        isReference ? '' : '≥ 0.90',
        isReference ? '' : rpsRatio >= 0.9 && cpuRatio >= 0.9 ? 'yes' : 'NO',
      ]);
    }
  }
  // Trellis on top of the floor: what Trellis adds to a request context, against the app of the
  // same round that only enters an AsyncLocalStorage store.
  for (const fw of ['express', 'fastify'] as const) {
    const key = pairKey(`${fw}-als`, `${fw}-trellis`);
    const rpsRatio = median(rpsRatios.get(key) ?? []);
    const cpuRatio = median(cpuRatios.get(key) ?? []);
    const label = `${fw} + trellis (with the request context) against ${fw} + AsyncLocalStorage.run only`;
    const row = (name: string, ratio: number, unit: string): BenchRow => ({
      name,
      value: Number(ratio.toFixed(3)),
      unit,
      peer: `${fw} + AsyncLocalStorage.run only`,
      ratio: Number(ratio.toFixed(3)),
      target: '≥ 0.90',
      pass: ratio >= 0.9,
    });
    rows.push(
      row(`${label} (${node})`, rpsRatio, 'req/s ratio (trellis ÷ floor, same seconds)'),
      row(`${label}, CPU per request (${node})`, cpuRatio, 'CPU ratio (floor ÷ trellis)'),
    );
    table.push([
      `${fw} + trellis vs floor`,
      '',
      '',
      rpsRatio.toFixed(3),
      cpuRatio.toFixed(3),
      '≥ 0.90',
      rpsRatio >= 0.9 && cpuRatio >= 0.9 ? 'yes' : 'NO',
    ]);
  }
  const widths = (table[0] ?? []).map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  console.log(`\nservers on Node ${node}`);
  for (const r of table) console.log(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '));

  writeResult({
    area,
    command,
    title: `Server instrumentation cost (Express and Fastify adapters), servers on ${runtime}`,
    setup: `hello-world GET /hello/:name; per round and framework all apps run in fresh processes${hasTaskset ? ' pinned to CPU 0' : ''}, loaded one at a time (interleaved): after a 2 s warm-up each, ${SLICES} passes of ${SLICE_S} s per app under wrk -t1 -c${CONNECTIONS}${hasTaskset ? ' (CPU 1)' : ''}, every other pass reversed, start order rotated per round; ${ROUNDS} rounds; ratios are the median of the per-round ratios`,
    rows,
    notes: [
      'peers: express-prom-bundle (includeMethod, includePath, default Node metrics) and fastify-metrics 12 (defaults: route histogram + summary, default Node metrics); metrics only, no tracing, context or shutdown tracking.',
      'floor = the bare app plus one AsyncLocalStorage.run per request (first middleware / onRequest hook), no Trellis: what any per-request context costs on this runtime. "trellis vs floor" compares Trellis (with its context) with the floor of the same round: what Trellis adds on top of a request context.',
      'trellis = createMetrics() (default Node metrics on) + the adapter with tracing on but no OpenTelemetry SDK installed (no-op tracer) + createHealth() attached to the server; noctx = the same with requestContext: false (no AsyncLocalStorage store per request).',
      `servers ran on Node ${node}${SERVER_FLAGS.length ? ` with ${SERVER_FLAGS.join(' ')}` : ''}; set BENCH_SERVER_NODE to run them on another binary, BENCH_SERVER_FLAGS to pass it flags.`,
      "The apps of a round take turns on one CPU in 1 s slices, so drift of the machine hits them alike and they never compete for the CPU; req/s ratio = requests served in the same seconds under the same load, CPU ratio = bare µs per request ÷ the app's (process.cpuUsage inside each server).",
    ],
  });
}

await main();
