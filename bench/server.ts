/**
 * Server instrumentation cost: a bare Express 5 and a bare Fastify 5 hello-world against the
 * same apps with the Trellis adapter (`createMetrics()` + tracing with no OpenTelemetry SDK, i.e.
 * the no-op tracer, + `createHealth()` attached to the server).
 *
 *   npx turbo run build --filter=@trellis/core && npx tsx bench/server.ts
 *   BENCH_SERVER_NODE=/path/to/node24 npx tsx bench/server.ts   # servers on another Node
 *
 * Each app runs in its own process, started afresh for every round (one server differs by up to
 * ±20% from one process to the next, more than between rounds of one process). The load
 * generator is wrk (autocannon if wrk is missing), CONNECTIONS keep-alive connections. Apps run
 * interleaved for ROUNDS (default 5) rounds of ROUND_S seconds (after a 2 s warm-up each time);
 * the median round counts. Besides requests per second, each
 * server reports its own CPU time per request, which is far less sensitive to other load on a
 * shared machine than throughput is.
 */
import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type BenchRow, writeResult } from './report.js';

const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const ROUND_S = Number(process.env.BENCH_ROUND_S ?? 3);
/** Run the servers on another Node binary, e.g. Node 24 (the load side stays on this one). */
const SERVER_NODE = process.env.BENCH_SERVER_NODE;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);

const variants = [
  'express-bare',
  'express-trellis',
  'express-trellis-noctx',
  'fastify-bare',
  'fastify-trellis',
  'fastify-trellis-noctx',
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
  if (variant.startsWith('express')) {
    const { default: express } = await import('express');
    const app = express();
    if (trellisOn) {
      const { trellis } = await import('@trellis/core/express');
      app.use(trellis({ health, metrics, requestContext }));
    }
    app.get('/hello/:name', (req, res) => {
      res.json({ hello: req.params.name });
    });
    server = app.listen(0, '127.0.0.1');
    await once(server, 'listening');
  } else {
    const { default: Fastify } = await import('fastify');
    const app = Fastify({ logger: false });
    if (trellisOn) {
      const { trellis } = await import('@trellis/core/fastify');
      await app.register(trellis, { health, metrics, requestContext });
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

interface App {
  variant: Variant;
  child: ChildProcess;
  url: string;
  node: string;
}

async function start(variant: Variant): Promise<App> {
  const child = fork(import.meta.filename, ['serve', variant], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
    ...(SERVER_NODE && { execPath: SERVER_NODE }),
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

const hasWrk = spawnSync('wrk', ['--version']).error === undefined;

/** Runs the load for `seconds`; returns completed requests (non-2xx are an error). */
async function load(url: string, seconds: number): Promise<number> {
  if (hasWrk) {
    const r = spawnSync('wrk', ['-t1', `-c${CONNECTIONS}`, `-d${seconds}s`, url], {
      encoding: 'utf8',
    });
    if (r.status !== 0) throw new Error(`wrk failed: ${r.stderr}`);
    if (/Non-2xx/.test(r.stdout)) throw new Error(`non-2xx responses:\n${r.stdout}`);
    const m = /(\d+) requests in/.exec(r.stdout);
    if (!m) throw new Error(`cannot parse wrk output:\n${r.stdout}`);
    return Number(m[1]);
  }
  const { default: autocannon } = await import('autocannon');
  const result = await autocannon({ url, connections: CONNECTIONS, duration: seconds });
  if (result.non2xx > 0) throw new Error(`${result.non2xx} non-2xx responses`);
  return result.requests.total;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
};

async function main(): Promise<void> {
  const rps = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  const cpu = new Map<Variant, number[]>(variants.map((v) => [v, []]));
  let node = process.version;
  let app: App | undefined;
  try {
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of variants) {
        // A fresh process per round: the same server varies by up to ±20% between processes
        // (JIT and heap layout), more than between rounds in one process.
        app = await start(variant);
        node = app.node;
        await load(app.url, 2); // warm-up
        const cpu0 = await serverCpuUs(app);
        const t0 = performance.now();
        const n = await load(app.url, ROUND_S);
        const seconds = (performance.now() - t0) / 1000;
        const cpu1 = await serverCpuUs(app);
        rps.get(app.variant)?.push(n / seconds);
        cpu.get(app.variant)?.push((cpu1 - cpu0) / n);
        console.log(
          `round ${round + 1} ${app.variant.padEnd(16)} ${(n / seconds).toFixed(0).padStart(7)} req/s  ${((cpu1 - cpu0) / n).toFixed(1).padStart(6)} µs CPU/req`,
        );
        app.child.kill();
        await once(app.child, 'exit');
        app = undefined;
      }
    }
  } finally {
    app?.child.kill();
  }

  const rows: BenchRow[] = [];
  const table: string[][] = [
    ['app', 'req/s', 'µs CPU/req', 'req/s ratio', 'CPU ratio', 'target', 'pass'],
  ];
  for (const fw of ['express', 'fastify'] as const) {
    const bareRps = median(rps.get(`${fw}-bare`) ?? []);
    const bareCpu = median(cpu.get(`${fw}-bare`) ?? []);
    rows.push(
      {
        name: `${fw} bare (${node})`,
        value: Math.round(bareRps),
        unit: 'req/s',
        chart: 'server req/s',
      },
      {
        name: `${fw} bare CPU per request (${node})`,
        value: Number(bareCpu.toFixed(1)),
        unit: 'µs',
      },
    );
    table.push([`${fw} bare`, bareRps.toFixed(0), bareCpu.toFixed(1), '', '', '', '']);
    for (const [suffix, label] of [
      ['trellis', 'metrics + no-op tracing + health + request context'],
      ['trellis-noctx', 'same, requestContext: false'],
    ] as const) {
      const v = `${fw}-${suffix}` as Variant;
      const r = median(rps.get(v) ?? []);
      const c = median(cpu.get(v) ?? []);
      const rpsRatio = r / bareRps;
      const cpuRatio = bareCpu / c;
      rows.push(
        {
          name: `${fw} + trellis: ${label} (${node})`,
          value: Math.round(r),
          unit: 'req/s (ratio: trellis ÷ bare)',
          peer: `${fw} bare`,
          ratio: Number(rpsRatio.toFixed(3)),
          target: '≥ 0.90',
          pass: rpsRatio >= 0.9,
          chart: 'server req/s',
        },
        {
          name: `${fw} + trellis CPU per request: ${label} (${node})`,
          value: Number(c.toFixed(1)),
          unit: 'µs (ratio: bare ÷ trellis)',
          peer: `${fw} bare`,
          ratio: Number(cpuRatio.toFixed(3)),
          target: '≥ 0.90',
          pass: cpuRatio >= 0.9,
        },
      );
      table.push([
        `${fw} + ${suffix}`,
        r.toFixed(0),
        c.toFixed(1),
        rpsRatio.toFixed(3),
        cpuRatio.toFixed(3),
        '≥ 0.90',
        rpsRatio >= 0.9 ? 'yes' : 'NO',
      ]);
    }
  }
  const widths = (table[0] ?? []).map((_, i) => Math.max(...table.map((r) => (r[i] ?? '').length)));
  console.log(`\nservers on Node ${node}`);
  for (const r of table) console.log(r.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  '));

  writeResult({
    area: SERVER_NODE ? `server-${node.split('.')[0]}` : 'server',
    command: SERVER_NODE
      ? `BENCH_SERVER_NODE=<a Node ${node} binary> npx tsx bench/server.ts`
      : 'npx tsx bench/server.ts',
    title: 'Server instrumentation cost (Express and Fastify adapters)',
    setup: `hello-world GET /hello/:name, ${hasWrk ? 'wrk -t1' : 'autocannon'} -c${CONNECTIONS}, ${ROUNDS} interleaved rounds of ${ROUND_S} s, each in a fresh server process after a 2 s warm-up, median`,
    rows,
    notes: [
      'trellis = createMetrics() (default Node metrics on) + the adapter with tracing on but no OpenTelemetry SDK installed (no-op tracer) + createHealth() attached to the server; noctx = the same with requestContext: false (no AsyncLocalStorage store per request).',
      `servers ran on Node ${node}; set BENCH_SERVER_NODE to run them on another binary.`,
      'CPU per request is measured inside each server process (process.cpuUsage), so it is robust to other load on the machine; req/s is not.',
    ],
  });
}

if (process.argv[2] === 'serve') {
  await serve(process.argv[3] as Variant);
} else {
  await main();
}
