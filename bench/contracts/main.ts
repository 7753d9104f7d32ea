/**
 * Contracts: what serving a contract costs, and how fast the typed client reads SSE.
 *
 *   npx tsx bench/contracts/main.ts
 *   BENCH_ROUNDS=5 BENCH_SLICE_S=3 npx tsx bench/contracts/main.ts
 *
 * 1. A POST with params, query and body validation, served by `serve(benchApi, ...)` against the
 *    same route written by hand with the same zod parses, on Express 4, Express 5 and Fastify.
 *    Each app runs in its own process; autocannon (50 connections) loads one app at a time in
 *    slices of BENCH_SLICE_S seconds (default 2), alternating hand/served and reversing the order
 *    every round, BENCH_ROUNDS rounds (default 3). Ratio = served req/s ÷ hand req/s, the median
 *    of the rounds. Target ≥ 0.95 (issue 19).
 * 2. SSE: a served endpoint streams events as fast as the connection takes them; the typed client
 *    (`createClient` with `sse(Tick)`) reads and validates them on one connection for
 *    BENCH_SSE_S seconds (default 3). Target ≥ 50 000 events/s.
 *
 * ts-rest (`@ts-rest/express` with Express 4 and zod 3) is not compared: it is not installed
 * and its peers conflict with the workspace (see bench/results/contracts.json notes).
 *
 * The machine is shared: the figures are indicative, the ratios (same run, interleaved) are what
 * to read.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { createClient } from '@trellis/core';
import autocannon from 'autocannon';
import { type BenchRow, median, writeResult } from '../report.js';
import { BODY, benchApi, PATH } from './contract.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SLICE_S = Number(process.env.BENCH_SLICE_S ?? 2);
const SSE_S = Number(process.env.BENCH_SSE_S ?? 3);
const CONNECTIONS = 50;

interface App {
  variant: string;
  child: ChildProcess;
  url: string;
}

async function start(variant: string): Promise<App> {
  const child = fork(join(import.meta.dirname, 'apps.ts'), [variant], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
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

for (const framework of ['express4', 'express5', 'fastify']) {
  const hand = await start(`${framework}-hand`);
  const served = await start(`${framework}-served`);
  try {
    await check(hand);
    await check(served);
    // Warm-up: one short slice each.
    await load(hand, 1);
    await load(served, 1);
    const ratios: number[] = [];
    const handRps: number[] = [];
    const servedRps: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? [hand, served] : [served, hand];
      const got = new Map<App, number>();
      for (const app of order) {
        const r = await load(app, SLICE_S);
        if (r.non2xx > 0) throw new Error(`${app.variant}: ${r.non2xx} non-2xx answers`);
        got.set(app, r.rps);
      }
      const h = got.get(hand) as number;
      const s = got.get(served) as number;
      handRps.push(h);
      servedRps.push(s);
      ratios.push(s / h);
      log(
        `${framework} round ${round + 1}: hand ${h.toFixed(0)} req/s, served ${s.toFixed(0)} req/s, ratio ${(s / h).toFixed(3)}`,
      );
    }
    const ratio = median(ratios);
    rows.push({
      name: `${framework}: served contract vs hand-written (params+query+body)`,
      value: Math.round(median(servedRps)),
      unit: 'req/s',
      peer: `hand-written ${Math.round(median(handRps))} req/s`,
      ratio: Number(ratio.toFixed(3)),
      target: '≥ 0.95×',
      pass: ratio >= 0.95,
    });
  } finally {
    hand.child.kill();
    served.child.kill();
  }
}

// SSE through the typed client, one connection.
{
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
    `${r.pass ? 'met ' : 'MISS'}  ${r.name}: ${r.value} ${r.unit}${r.ratio !== undefined ? `, ratio ${r.ratio} (${r.peer})` : ''}, target ${r.target}`,
  );
}
writeResult({
  area: 'contracts',
  title: 'Served contracts and SSE through the typed client',
  command: 'npx tsx bench/contracts/main.ts',
  setup: `autocannon ${CONNECTIONS} connections, ${ROUNDS} interleaved rounds of ${SLICE_S} s per app, apps in their own processes, Node ${process.version}`,
  rows,
  notes: [
    'Shared 2-core machine: absolute figures are indicative; ratios are same-run and interleaved.',
    'ts-rest not compared: @ts-rest/express needs Express 4 and zod 3 peers, not installed here and in conflict with the workspace.',
    'The served apps run with the default options (response validation on); the hand-written route validates params, query and body only.',
  ],
});
