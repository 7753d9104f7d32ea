/**
 * Contracts: what serving a contract costs, and how fast the typed client reads SSE.
 *
 *   npx turbo run build --filter=@trellis/core && BENCH_TSREST=1 npx tsx bench/contracts/main.ts
 *   TSX_TSCONFIG_PATH=tsconfig.paths.json npx tsx bench/contracts/main.ts   # from the sources
 *   BENCH_ONLY=fastify,sse BENCH_SLICE_S=0 npx tsx bench/contracts/main.ts  # a part, no req/s
 *
 * 1. A POST with params, query and body validation, served by `serve(benchApi, ...)` against the
 *    same route written by hand with the same zod parses (bench/contracts/apps.ts), on Express 4,
 *    Express 5 and Fastify, each app in its own process:
 *    - CPU per request (the figure to judge; bench/contracts/cost.ts): after BENCH_COST_WARMUP
 *      requests (default 3000), BENCH_COST_ROUNDS rounds (default 5) in which each app in turn
 *      (order rotating) gets BENCH_COST_REQUESTS requests (default 3000) over 8 keep-alive
 *      connections while its own user + system CPU time is read before and after over IPC.
 *      Ratio = hand ÷ served per round, the median of the rounds (≥ 0.95 meets). What a request
 *      costs the server does not depend on how much CPU the machine left it; req/s does.
 *    - Compared twice: with the served default (the answer checked against the contract) against
 *      a hand-written route that also checks its answer with `safeParse` (the same four parses),
 *      and with `validateResponse: false` against a route that checks the request only (three).
 *      On Fastify also against the hand-written route moved into Fastify's own validation and
 *      serialisation hooks, which the issue asks `serve` to use: the floor of that design.
 *    - req/s: autocannon (50 connections) in slices of BENCH_SLICE_S seconds (default 2,
 *      0 skips), alternating hand/served, BENCH_ROUNDS rounds (default 3); served ÷ hand, median.
 * 2. SSE: a served endpoint streams events as fast as the connection takes them; the typed client
 *    (`createClient` with `sse(Tick)`) reads and validates them on one connection for
 *    BENCH_SSE_S seconds (default 3). Target ≥ 50 000 events/s.
 * 3. With BENCH_TSREST=1: the served contract on Express 4 against `@ts-rest/express` 3.52 serving
 *    the same contract (Express 4, zod 3, `express.json()`, response validation on), installed at
 *    run time into `.tmp/tsrest` (bench/contracts/tsrest.ts), never into the workspace; CPU per
 *    request and req/s as above. Target ≥ 1.0×. The ratio also compares zod 3 with zod 4.
 *
 * The machine is shared: req/s figures are indicative only; the CPU ratios are what to read.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createClient } from '@trellis/core';
import autocannon from 'autocannon';
import { type BenchRow, median, writeResult } from '../lib/report.js';
import { BODY, benchApi, PATH } from './contract.js';
import { type CostResult, measureCost } from './cost.js';
import { prepareTsRest } from './tsrest.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SLICE_S = Number(process.env.BENCH_SLICE_S ?? 2);
const SSE_S = Number(process.env.BENCH_SSE_S ?? 3);
const CONNECTIONS = 50;
const COST_REQUESTS = Number(process.env.BENCH_COST_REQUESTS ?? 3_000);
const COST_WARMUP = Number(process.env.BENCH_COST_WARMUP ?? 3_000);
const COST_ROUNDS = Number(process.env.BENCH_COST_ROUNDS ?? 5);
const COST_CONNECTIONS = Number(process.env.BENCH_COST_CONNECTIONS ?? 8);

interface App {
  variant: string;
  child: ChildProcess;
  url: string;
}

async function start(variant: string, script?: string): Promise<App> {
  const child = fork(script ?? join(import.meta.dirname, 'apps.ts'), [variant], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
    ...(script !== undefined && { execArgv: [] }),
  });
  const [msg] = (await once(child, 'message')) as [{ port: number }];
  return { variant, child, url: `http://127.0.0.1:${msg.port}` };
}

async function load(app: App, seconds: number): Promise<{ rps: number; non2xx: number }> {
  const result = await autocannon({
    url: app.url + PATH,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
    connections: CONNECTIONS,
    duration: seconds,
  });
  return { rps: result.requests.average, non2xx: result.non2xx };
}

async function check(app: App): Promise<void> {
  const res = await fetch(app.url + PATH, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: BODY,
  });
  if (res.status !== 201)
    throw new Error(`${app.variant}: expected 201, got ${res.status} ${await res.text()}`);
}

const rows: BenchRow[] = [];
const log = (line: string) => process.stdout.write(`${line}\n`);

/** Interleaved slices of two apps; the median of `a ÷ b` over the rounds. */
async function compare(label: string, a: App, b: App) {
  await check(a);
  await check(b);
  // Warm-up: one short slice each.
  await load(a, 1);
  await load(b, 1);
  const ratios: number[] = [];
  const aRps: number[] = [];
  const bRps: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? [b, a] : [a, b];
    const got = new Map<App, number>();
    for (const app of order) {
      const r = await load(app, SLICE_S);
      if (r.non2xx > 0) throw new Error(`${app.variant}: ${r.non2xx} non-2xx answers`);
      got.set(app, r.rps);
    }
    const x = got.get(a) as number;
    const y = got.get(b) as number;
    aRps.push(x);
    bRps.push(y);
    ratios.push(x / y);
    log(
      `${label} round ${round + 1}: ${a.variant} ${x.toFixed(0)} req/s, ${b.variant} ${y.toFixed(0)} req/s, ratio ${(x / y).toFixed(3)}`,
    );
  }
  return { ratio: median(ratios), a: median(aRps), b: median(bRps) };
}

const ONLY = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
const wanted = (part: string) => ONLY.length === 0 || ONLY.includes(part);
const costOpts = {
  requests: COST_REQUESTS,
  warmup: COST_WARMUP,
  rounds: COST_ROUNDS,
  connections: COST_CONNECTIONS,
  log,
};
const us = (x: number) => `${x.toFixed(1)} µs`;

/** Per round `base ÷ app` (same round, so the machine's state then weighs on both): median, range. */
function pairedRatio(base: CostResult, app: CostResult): { ratio: number; range: string } {
  const xs = base.perRound.map((b, i) => b / (app.perRound[i] as number));
  return {
    ratio: median(xs),
    range: `${Math.min(...xs).toFixed(2)}-${Math.max(...xs).toFixed(2)}`,
  };
}

for (const framework of ['express4', 'express5', 'fastify']) {
  if (!wanted(framework)) continue;
  const hand = await start(`${framework}-hand`);
  const served = await start(`${framework}-served`);
  const handIn = await start(`${framework}-hand-noresp`);
  const servedIn = await start(`${framework}-served-noresp`);
  const hooks = framework === 'fastify' ? await start('fastify-hooks') : undefined;
  const all = [hand, served, handIn, servedIn, ...(hooks ? [hooks] : [])];
  try {
    for (const app of all) await check(app);
    const cost = await measureCost(all, costOpts);
    const pairs: [App, App, string, string, string][] = [
      [served, hand, 'hand-written', 'params+query+body+answer checked (defaults)', '≥ 0.95×'],
      [
        servedIn,
        handIn,
        'hand-written',
        'params+query+body, answer not checked (validateResponse: false)',
        '≥ 0.95×',
      ],
    ];
    if (hooks) {
      pairs.push([
        served,
        hooks,
        "hand-written in Fastify's own validation/serialisation hooks",
        'params+query+body+answer checked (the floor of plugging into those hooks)',
        '',
      ]);
    }
    for (const [s, h, peer, what, target] of pairs) {
      const cs = cost.get(s) as CostResult;
      const ch = cost.get(h) as CostResult;
      const { ratio, range } = pairedRatio(ch, cs);
      log(
        `${framework} cost, ${what}: served ${us(cs.us)} (system ${us(cs.systemUs)}), ${peer} ${us(ch.us)} CPU per request; ${peer} ÷ served ${ratio.toFixed(3)} (rounds ${range})`,
      );
      rows.push({
        name: `${framework}: CPU per request, served contract vs ${peer}, ${what}`,
        value: Number(cs.us.toFixed(1)),
        unit: `µs CPU/request (ratio: ${peer} ÷ served, median of per-round ratios, rounds ${range})`,
        peer: `${peer} ${ch.us.toFixed(1)} µs`,
        ratio: Number(ratio.toFixed(3)),
        ...(target !== '' && { target, pass: ratio >= 0.95 }),
      });
    }
    if (SLICE_S > 0) {
      const r = await compare(framework, served, hand);
      rows.push({
        name: `${framework}: req/s, served contract vs hand-written, params+query+body+answer checked`,
        value: Math.round(r.a),
        unit: 'req/s (ratio: served ÷ hand)',
        peer: `hand-written ${Math.round(r.b)} req/s`,
        ratio: Number(r.ratio.toFixed(3)),
        target: '≥ 0.95×',
        pass: r.ratio >= 0.95,
      });
    }
  } finally {
    for (const app of all) app.child.kill();
  }
}

if (process.env.BENCH_TSREST === '1' && wanted('tsrest')) {
  const script = prepareTsRest(log);
  const tsrest = await start('tsrest-express4', script);
  const served = await start('express4-served');
  try {
    await check(tsrest);
    await check(served);
    const cost = await measureCost([tsrest, served], costOpts);
    const cs = cost.get(served) as CostResult;
    const ct = cost.get(tsrest) as CostResult;
    const { ratio, range } = pairedRatio(ct, cs);
    log(
      `ts-rest cost: served ${us(cs.us)}, ts-rest ${us(ct.us)} CPU per request, ts-rest ÷ served ${ratio.toFixed(3)} (rounds ${range})`,
    );
    rows.push({
      name: 'express4: CPU per request, served contract (zod 4) vs @ts-rest/express 3.52 (zod 3), same contract, answers checked',
      value: Number(cs.us.toFixed(1)),
      unit: `µs CPU/request (ratio: ts-rest ÷ served, median of per-round ratios, rounds ${range})`,
      peer: `ts-rest ${ct.us.toFixed(1)} µs`,
      ratio: Number(ratio.toFixed(3)),
      target: '≥ 1.0×',
      pass: ratio >= 1,
    });
    if (SLICE_S > 0) {
      const r = await compare('ts-rest', served, tsrest);
      rows.push({
        name: 'express4: req/s, served contract (zod 4) vs @ts-rest/express 3.52 (zod 3), same contract',
        value: Math.round(r.a),
        unit: 'req/s (ratio: served ÷ ts-rest)',
        peer: `ts-rest ${Math.round(r.b)} req/s`,
        ratio: Number(r.ratio.toFixed(3)),
        target: '≥ 1.0×',
        pass: r.ratio >= 1,
      });
    }
  } finally {
    tsrest.child.kill();
    served.child.kill();
  }
}

// SSE through the typed client, one connection.
if (wanted('sse')) {
  const app = await start('sse');
  const client = createClient({ baseUrl: app.url, endpoints: { ticks: benchApi.ticks } });
  try {
    const read = async (seconds: number) => {
      let count = 0;
      const until = performance.now() + seconds * 1000;
      for await (const e of client.ticks()) {
        count++;
        if ((count & 1023) === 0 && performance.now() >= until) break;
        if (e.data.n < 0) throw new Error('impossible');
      }
      return count;
    };
    await read(1); // warm-up
    const started = performance.now();
    const count = await read(SSE_S);
    const rate = count / ((performance.now() - started) / 1000);
    log(
      `sse: ${count} validated events in ${SSE_S} s through the typed client: ${rate.toFixed(0)} events/s`,
    );
    rows.push({
      name: 'SSE through the typed client, one connection (validated events)',
      value: Math.round(rate),
      unit: 'events/s',
      target: '≥ 50 000 events/s',
      pass: rate >= 50_000,
    });
  } finally {
    await client.close();
    app.child.kill();
  }
}

log('');
for (const r of rows) {
  log(
    `${r.target === undefined ? 'info' : r.pass ? 'met ' : 'MISS'}  ${r.name}: ${r.value} ${r.unit}${r.ratio !== undefined ? `, ratio ${r.ratio} (${r.peer})` : ''}${r.target === undefined ? '' : `, target ${r.target}`}`,
  );
}
if (ONLY.length === 0)
  writeResult({
    area: 'contracts',
    title: 'Served contracts and SSE through the typed client',
    command: `npx turbo run build --filter=@trellis/core && ${process.env.BENCH_TSREST === '1' ? 'BENCH_TSREST=1 ' : ''}npx tsx bench/contracts/main.ts`,
    setup: `CPU per request: ${COST_WARMUP} warm-up requests, then ${COST_ROUNDS} rounds of ${COST_REQUESTS} requests per app over ${COST_CONNECTIONS} keep-alive connections, apps interleaved, the server's process.cpuUsage() (user + system) read over IPC around each batch; ratio = median of per-round ratios. req/s: autocannon ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SLICE_S} s per app. Apps in their own processes, Node ${process.version}, NODE_ENV=production`,
    rows,
    notes: [
      'Shared 2-core machine: absolute figures are indicative; ratios are same-run and interleaved.',
      process.env.BENCH_TSREST === '1'
        ? 'ts-rest: @ts-rest/express 3.52.1 with Express 4.22 and zod 3.25, installed into .tmp/tsrest at run time; the ratio also compares zod 3 with zod 4.'
        : 'ts-rest not compared in this run (BENCH_TSREST=1 installs it into .tmp/tsrest and compares).',
      'Fair comparison (issue 19: "the same route written by hand with the same zod parses"): the served default checks its answer against the contract, so the hand-written route it is compared with checks its answer with safeParse too; the validateResponse: false rows compare request checks only. Hand-written Express uses express.json() and res.json(); hand-written Fastify its own JSON parser and reply.send().',
      'Read the CPU rows: what a request costs the server does not depend on the CPU the loaded machine left it; req/s does (earlier runs on this machine swung 0.3-3.3x). The per-round range shows the noise left (different processes of one app differ by a few per cent).',
      "fastify-hooks: the hand-written route with the same parses inside Fastify's validatorCompiler/serializerCompiler, as fastify-type-provider-zod does, which the issue asks serve to use on Fastify: its cost over the plain route is the price of that design, not of Trellis.",
    ],
  });
