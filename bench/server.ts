/**
 * Server instrumentation cost: a bare Express 5 and a bare Fastify 5 hello-world against the
 * same apps with the Trellis adapter (`createMetrics()` + tracing with no OpenTelemetry SDK, i.e.
 * the no-op tracer, + `createHealth()` attached to the server).
 *
 *   npx turbo run build --filter=@trellis/core && npx tsx bench/server.ts
 *   BENCH_SERVER_NODE=/path/to/node24 npx tsx bench/server.ts   # servers on another Node
 *
 * A reference app per framework enters one AsyncLocalStorage store per request and does nothing
 * else: the floor any per-request context costs on the runtime (13-16 % of the Fastify
 * hello-world on Node 20, whose AsyncLocalStorage hooks every promise). Trellis with its context
 * also runs side by side against that floor. `BENCH_SERVER_FLAGS` passes flags to the servers'
 * Node, e.g. `--experimental-async-context-frame` on Node 22.
 *
 * Each instrumented app (trellis; trellis with `requestContext: false`) runs at the same time
 * as a bare app of its framework, each in its own fresh process, both pinned to CPU 0
 * (`taskset`, when present), each under its own wrk (`-c CONNECTIONS`, pinned to CPU 1) for
 * ROUND_S seconds after a 2 s warm-up. The two share one CPU under identical load, so whatever
 * else the machine is doing hits both alike: on the shared development machine one app measured
 * alone drifted by up to 40 % between runs minutes apart, while two copies of the same app side
 * by side agreed within about 3 % on Node 20 (three side by side interfered with each other
 * visibly, so it is pairs). On Node 24 the process started first of two identical ones used
 * 20-25 % more CPU per request, so every pair is measured in both start orders and the round's
 * ratio is the geometric mean of the two. A ratio is the app's requests ÷ bare's requests in the
 * same seconds, or bare's CPU per request ÷ the app's; the median of ROUNDS (default 5) rounds
 * counts.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { type ChildProcess, fork, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyPluginAsync } from 'fastify';
import { type BenchRow, writeResult } from './report.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUND_S = Number(process.env.BENCH_ROUND_S ?? 3);
/** Run the servers on another Node binary, e.g. Node 24 (the load side stays on this one). */
const SERVER_NODE = process.env.BENCH_SERVER_NODE;
/** Extra flags for the servers' Node, e.g. `--experimental-async-context-frame` on Node 22. */
const SERVER_FLAGS = (process.env.BENCH_SERVER_FLAGS ?? '').split(/\s+/).filter(Boolean);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const variants = [
  'express-bare',
  'express-als',
  'express-trellis',
  'express-trellis-noctx',
  'express-prom-bundle',
  'fastify-bare',
  'fastify-als',
  'fastify-trellis',
  'fastify-trellis-noctx',
  'fastify-metrics',
] as const;
type Variant = (typeof variants)[number];

// ---------------------------------------------------------------------------------------------
// Server side (this file, forked with `serve <variant>`).

async function serve(variant: Variant): Promise<void> {
  let server: Server;
  const trellisOn = variant.includes('trellis');
  const requestContext = !variant.endsWith('noctx');
  const core = trellisOn ? await import('@trellis/core') : undefined;
  const health = core?.createHealth({ signals: false });
  const metrics = core?.createMetrics();
  // The floor: no Trellis, only what any per-request context costs, one AsyncLocalStorage
  // store entered per request by the first middleware or hook.
  const als = variant.endsWith('-als') ? new AsyncLocalStorage<{ id: number }>() : undefined;
  let seq = 0;
  if (variant.startsWith('express')) {
    const { default: express } = await import('express');
    const app = express();
    if (als) app.use((_req, _res, next) => als.run({ id: ++seq }, next));
    if (trellisOn) {
      const { trellis } = await import('@trellis/core/express');
      app.use(trellis({ health, metrics, requestContext }));
    }
    if (variant === 'express-prom-bundle') {
      // The peer, set up for the same labels: method, route, status (default Node metrics on).
      const { default: promBundle } = await import('express-prom-bundle');
      app.use(
        promBundle({
          includeMethod: true,
          includePath: true,
          promClient: { collectDefaultMetrics: {} },
        }),
      );
    }
    app.get('/hello/:name', (req, res) => {
      res.json({ hello: req.params.name });
    });
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
  } else {
    const { default: Fastify } = await import('fastify');
    const app = Fastify({ logger: false });
    if (als) app.addHook('onRequest', (_req, _reply, next) => als.run({ id: ++seq }, next));
    if (trellisOn) {
      const { trellis } = await import('@trellis/core/fastify');
      await app.register(trellis, { health, metrics, requestContext });
    }
    if (variant === 'fastify-metrics') {
      // The peer with its defaults: route histogram and summary, default Node metrics, /metrics.
      // A CommonJS module with `exports.default`: under ESM that is `.default.default`.
      const cjs = (await import('fastify-metrics')).default as unknown as {
        default: FastifyPluginAsync<{ endpoint: string }>;
      };
      await app.register(cjs.default, { endpoint: '/metrics' });
    }
    app.get<{ Params: { name: string } }>('/hello/:name', async (req) => ({
      hello: req.params.name,
    }));
    await app.listen({ port: 0, host: '127.0.0.1' });
    server = app.server;
  }
  if (health) health.attach(server);
  server.keepAliveTimeout = 60_000;
  process.on('SIGINT', () => process.exit(0));
  process.on('message', (msg) => {
    if (msg === 'cpu') process.send?.(process.cpuUsage());
  });
  process.send?.({ port: (server.address() as AddressInfo).port, node: process.version });
}

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
  const child = fork(import.meta.filename, ['serve', variant], {
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
  return { variant, child, url: `http://127.0.0.1:${msg.port}/hello/world`, node: msg.node };
}

async function serverCpuUs(app: App): Promise<number> {
  const reply = once(app.child, 'message');
  app.child.send('cpu');
  const [usage] = (await reply) as [NodeJS.CpuUsage];
  return usage.user + usage.system;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

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

/** Each instrumented app runs side by side with a bare app of its framework. */
const pairs: readonly (readonly [Variant, Variant])[] = [
  ['express-bare', 'express-als'],
  ['express-bare', 'express-trellis'],
  ['express-bare', 'express-trellis-noctx'],
  ['express-bare', 'express-prom-bundle'],
  ['fastify-bare', 'fastify-als'],
  ['fastify-bare', 'fastify-trellis'],
  ['fastify-bare', 'fastify-trellis-noctx'],
  ['fastify-bare', 'fastify-metrics'],
  // Trellis with the context against the floor: what Trellis adds to any request context.
  ['express-als', 'express-trellis'],
  ['fastify-als', 'fastify-trellis'],
];
/** Ratios are kept per pair: the app's name, or `app/base` when the base is not the bare app. */
const pairKey = (base: Variant, v: Variant): string =>
  base.endsWith('-bare') ? v : `${v}/${base}`;

async function main(): Promise<void> {
  if (!hasWrk) throw new Error('bench/server.ts needs wrk (apt-get install wrk)');
  const rps = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const cpu = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  /** Per-round ratios against the bare app of the same round. */
  const rpsRatios = new Map<string, number[]>(pairs.map(([b, v]) => [pairKey(b, v), []]));
  const cpuRatios = new Map<string, number[]>(pairs.map(([b, v]) => [pairKey(b, v), []]));
  let node = process.version;
  const running: App[] = [];

  /** One measurement of a pair, the apps started in the given order. */
  async function measure(order: readonly Variant[]) {
    // Fresh processes every time: one server differs by up to ±20% from one process to the
    // next (JIT and heap layout).
    for (const v of order) running.push(await start(v));
    node = running[0]?.node ?? node;
    await Promise.all(running.map((a) => wrkAsync(a.url, 2))); // warm-up
    const cpu0 = await Promise.all(running.map(serverCpuUs));
    const t0 = performance.now();
    const counts = await Promise.all(running.map((a) => wrkAsync(a.url, ROUND_S)));
    const seconds = (performance.now() - t0) / 1000;
    const cpu1 = await Promise.all(running.map(serverCpuUs));
    const result = new Map<Variant, { n: number; cpu: number; rps: number }>();
    running.forEach((a, i) => {
      const n = counts[i] ?? 0;
      result.set(a.variant, { n, cpu: ((cpu1[i] ?? 0) - (cpu0[i] ?? 0)) / n, rps: n / seconds });
    });
    for (const a of running.splice(0)) {
      a.child.kill();
      await once(a.child, 'exit');
    }
    return result;
  }

  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const [bare, v] of pairs) {
        // Both start orders: on Node 24 the process started first of two identical ones used
        // 20-25 % more CPU per request, consistently (not understood; Node 20 showed ±3 %). The
        // geometric mean of the two orders' ratios cancels such a factor.
        const one = await measure([bare, v]);
        const two = await measure([v, bare]);
        const ratio = (pick: (m: { n: number; cpu: number }) => number, invert: boolean) => {
          const r = (m: Map<Variant, { n: number; cpu: number; rps: number }>) => {
            const x = pick(m.get(v) ?? { n: 0, cpu: 0 });
            const y = pick(m.get(bare) ?? { n: 0, cpu: 0 });
            return invert ? y / x : x / y;
          };
          return Math.sqrt(r(one) * r(two));
        };
        const rpsRatio = ratio((m) => m.n, false);
        const cpuRatio = ratio((m) => m.cpu, true);
        for (const m of [one, two]) {
          for (const [variant, x] of m) {
            rps.get(variant)?.push(x.rps);
            cpu.get(variant)?.push(x.cpu);
          }
        }
        rpsRatios.get(pairKey(bare, v))?.push(rpsRatio);
        cpuRatios.get(pairKey(bare, v))?.push(cpuRatio);
        console.log(
          `round ${round + 1} ${pairKey(bare, v).padEnd(29)} req/s ratio ${rpsRatio.toFixed(3)}  CPU ratio ${cpuRatio.toFixed(3)}  (µs CPU/req: ${bare} ${one.get(bare)?.cpu.toFixed(1)}/${two.get(bare)?.cpu.toFixed(1)}, ${v} ${one.get(v)?.cpu.toFixed(1)}/${two.get(v)?.cpu.toFixed(1)})`,
        );
      }
    }
  } finally {
    for (const a of running) a.child.kill();
  }

  const area = [
    'server',
    ...(SERVER_NODE ? [node.split('.')[0]] : []),
    ...SERVER_FLAGS.map((f) => f.replace(/^--(experimental-)?/, '')),
  ].join('-');
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
      const isReference = suffix === peer || suffix === 'als';
      const r = median(rps.get(v) ?? []);
      const c = median(cpu.get(v) ?? []);
      const rpsRatio = median(rpsRatios.get(v) ?? []);
      const cpuRatio = median(cpuRatios.get(v) ?? []);
      const who =
        suffix === 'als'
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
        suffix === 'als'
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
  // Trellis on top of the floor: what Trellis adds to a request context, measured side by side
  // against the app that only enters an AsyncLocalStorage store.
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
    command: [
      ...(SERVER_NODE ? [`BENCH_SERVER_NODE=<a Node ${node} binary>`] : []),
      ...(SERVER_FLAGS.length ? [`BENCH_SERVER_FLAGS='${SERVER_FLAGS.join(' ')}'`] : []),
      'npx tsx bench/server.ts',
    ].join(' '),
    title: `Server instrumentation cost (Express and Fastify adapters), servers on Node ${node}${SERVER_FLAGS.length ? ` ${SERVER_FLAGS.join(' ')}` : ''}`,
    setup: `hello-world GET /hello/:name; per round each instrumented app runs side by side with a bare app of its framework, fresh processes${hasTaskset ? ' pinned to CPU 0' : ''}, each under its own wrk -t1 -c${CONNECTIONS}${hasTaskset ? ' (CPU 1)' : ''} for ${ROUND_S} s after a 2 s warm-up, in both start orders (geometric mean); ${ROUNDS} rounds; ratios are the median of the per-round ratios`,
    rows,
    notes: [
      'peers: express-prom-bundle (includeMethod, includePath, default Node metrics) and fastify-metrics 12 (defaults: route histogram + summary, default Node metrics); metrics only, no tracing, context or shutdown tracking.',
      'floor = the bare app plus one AsyncLocalStorage.run per request (first middleware / onRequest hook), no Trellis: what any per-request context costs on this runtime. "trellis vs floor" runs Trellis (with its context) side by side with the floor: what Trellis adds on top of a request context.',
      'trellis = createMetrics() (default Node metrics on) + the adapter with tracing on but no OpenTelemetry SDK installed (no-op tracer) + createHealth() attached to the server; noctx = the same with requestContext: false (no AsyncLocalStorage store per request).',
      `servers ran on Node ${node}${SERVER_FLAGS.length ? ` with ${SERVER_FLAGS.join(' ')}` : ''}; set BENCH_SERVER_NODE to run them on another binary, BENCH_SERVER_FLAGS to pass it flags.`,
      "The two apps compared share one CPU at the same time, so other load on the machine hits them alike; req/s ratio = requests served in the same seconds, CPU ratio = bare µs per request ÷ the app's (process.cpuUsage inside each server).",
    ],
  });
}

if (process.argv[2] === 'serve') {
  await serve(process.argv[3] as Variant);
} else {
  await main();
}
