/**
 * Typed client throughput: `createClient` GET returning a small JSON object, response
 * validation on, against a bare undici `Pool.request` + `body.json()` and global `fetch`.
 *
 *   npx turbo run build --filter=@trellis/core && node --expose-gc --import tsx bench/client/main.ts
 *
 * One local node:http server runs in its own process. Each candidate keeps CONCURRENCY requests
 * in flight for ROUND_MS; candidates run interleaved for ROUNDS rounds and the median round
 * counts; ratios are the median of per-round ratios (neighbours in time share the machine's
 * load, which matters on a busy machine). Client CPU per request is reported too: it does not
 * depend on how fast the server answers. Both undici candidates use CONCURRENCY keep-alive
 * connections.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createClient } from '@trellis/core';
import { Pool } from 'undici';
import { z } from 'zod';
import { type BenchRow, writeResult } from '../lib/report.js';

const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32);
const ROUND_MS = Number(process.env.BENCH_ROUND_MS ?? 1_500);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);

const serverCode = `
const http = require('node:http');
const body = JSON.stringify({ id: '1', name: 'lamp', price: 12.5, tags: ['home', 'light'] });
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

async function startServer(): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['-e', serverCode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [chunk] = (await once(child.stdout as NodeJS.ReadableStream, 'data')) as [Buffer];
  return { url: `http://127.0.0.1:${chunk.toString().trim()}`, child };
}

type Run = () => Promise<unknown>;

interface Sample {
  rps: number;
  /** Client-process CPU time (user + system) per request, in µs: robust on a busy machine. */
  cpuUs: number;
}

/** Requests per second with CONCURRENCY loops running `run` for `ms`, and CPU per request. */
async function throughput(run: Run, ms: number): Promise<Sample> {
  let done = 0;
  let stop = false;
  const loop = async () => {
    while (!stop) {
      await run();
      done++;
    }
  };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const loops = Array.from({ length: CONCURRENCY }, loop);
  await new Promise((r) => setTimeout(r, ms));
  stop = true;
  await Promise.all(loops);
  const elapsed = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { rps: (done * 1000) / elapsed, cpuUs: (cpu.user + cpu.system) / done };
}

const Item = z.object({
  id: z.string(),
  name: z.string(),
  price: z.number(),
  tags: z.array(z.string()),
});

const { url, child } = await startServer();
const client = createClient({
  baseUrl: url,
  endpoints: { getItem: { method: 'GET', path: '/items/:id', response: Item } },
  connections: CONCURRENCY,
  validateResponse: true,
});
const pool = new Pool(url, { connections: CONCURRENCY, keepAliveTimeout: 60_000 });

const candidates: Record<string, Run> = {
  'trellis createClient (validation on)': () => client.getItem({ params: { id: '1' } }),
  'undici Pool.request + body.json()': async () => {
    const res = await pool.request({ path: '/items/1', method: 'GET' });
    return res.body.json();
  },
  'global fetch + res.json()': async () => {
    const res = await fetch(`${url}/items/1`);
    return res.json();
  },
};

// BENCH_ONLY=trellis (a substring of a name) runs one candidate, e.g. for a CPU profile.
const only = process.env.BENCH_ONLY;
if (only !== undefined) {
  for (const name of Object.keys(candidates)) if (!name.includes(only)) delete candidates[name];
}

// Sanity: every candidate returns the same object.
for (const [name, run] of Object.entries(candidates)) {
  const value = (await run()) as { name?: string };
  if (value.name !== 'lamp') throw new Error(`${name} returned ${JSON.stringify(value)}`);
}

const samples: Record<string, Sample[]> = {};
for (const [name, run] of Object.entries(candidates)) {
  samples[name] = [];
  await throughput(run, 500); // warm up
}
// The order rotates every round, and the heap is collected (when --expose-gc is on, as in
// `npm run bench`) before each measurement, so fetch's garbage is not billed to whoever runs
// next. Per-round ratios compare candidates measured seconds apart.
const gc = (globalThis as { gc?: () => void }).gc;
const entries = Object.entries(candidates);
for (let r = 0; r < ROUNDS; r++) {
  for (let k = 0; k < entries.length; k++) {
    const [name, run] = entries[(r + k) % entries.length] as [string, Run];
    gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
    samples[name]?.push(await throughput(run, ROUND_MS));
  }
}
const median = (list: number[]) =>
  [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)] ?? 0;
const stat = (name: string, key: keyof Sample) => median((samples[name] ?? []).map((s) => s[key]));
const T = 'trellis createClient (validation on)';
const U = 'undici Pool.request + body.json()';
const F = 'global fetch + res.json()';
const trellis = stat(T, 'rps');
const undici = stat(U, 'rps');
const fetchRps = stat(F, 'rps');
/** Median over rounds of `a / b` measured in the same round. */
const roundRatio = (a: string, b: string, key: keyof Sample) =>
  median((samples[a] ?? []).map((s, i) => s[key] / (samples[b]?.[i]?.[key] ?? Number.NaN)));
const vsUndici = roundRatio(T, U, 'rps');
const vsFetch = roundRatio(T, F, 'rps');
const trellisCpu = stat(T, 'cpuUs');
const undiciCpu = stat(U, 'cpuUs');
const fetchCpu = stat(F, 'cpuUs');

await client.close();
await pool.close();
child.kill();

const rows: BenchRow[] = [
  {
    name: 'trellis createClient GET (validation on)',
    value: trellis,
    unit: 'req/s',
    chart: 'Typed client GET, req/s',
  },
  {
    name: 'undici Pool.request + body.json()',
    value: undici,
    unit: 'req/s',
    chart: 'Typed client GET, req/s',
  },
  {
    name: 'global fetch + res.json()',
    value: fetchRps,
    unit: 'req/s',
    chart: 'Typed client GET, req/s',
  },
  {
    name: 'trellis ÷ bare undici Pool (throughput)',
    value: vsUndici,
    unit: 'ratio',
    peer: 'undici Pool.request',
    ratio: vsUndici,
    target: '≥ 0.9×',
    pass: vsUndici >= 0.9,
  },
  { name: 'trellis client CPU per request', value: trellisCpu, unit: 'µs' },
  { name: 'undici Pool client CPU per request', value: undiciCpu, unit: 'µs' },
  { name: 'fetch client CPU per request', value: fetchCpu, unit: 'µs' },
  {
    name: 'bare undici CPU ÷ trellis CPU per request',
    value: undiciCpu / trellisCpu,
    unit: 'ratio',
    peer: 'undici Pool.request',
    ratio: undiciCpu / trellisCpu,
  },
  {
    name: 'fetch CPU ÷ trellis CPU per request',
    value: fetchCpu / trellisCpu,
    unit: 'ratio',
    peer: 'fetch',
    ratio: fetchCpu / trellisCpu,
  },
  {
    name: 'trellis ÷ global fetch (throughput)',
    value: vsFetch,
    unit: 'ratio',
    peer: 'fetch',
    ratio: vsFetch,
    target: '≥ 5×',
    pass: vsFetch >= 5,
  },
];

console.table(
  rows.map((r) => ({
    name: r.name,
    value: r.unit === 'ratio' ? `${r.value.toFixed(2)}×` : Number(r.value.toFixed(1)),
    unit: r.unit,
    target: r.target ?? '',
    pass: r.pass === undefined ? '' : r.pass ? 'yes' : 'NO',
  })),
);
writeResult({
  area: 'client',
  command:
    'npx turbo run build --filter=@trellis/core && node --expose-gc --import tsx bench/client/main.ts',
  title: 'Typed client (createClient) vs undici Pool and fetch',
  setup: `GET of a 60-byte JSON object from a local node:http server in its own process; ${CONCURRENCY} requests in flight; ${ROUNDS} interleaved rounds of ${ROUND_MS} ms, medians (ratios: median of per-round ratios). The typed client validates every response with zod.`,
  rows,
  notes: [
    `rounds (req/s): ${Object.entries(samples)
      .map(
        ([k, v]) =>
          `${k}: ${v.map((x) => `${Math.round(x.rps)} (${x.cpuUs.toFixed(1)} µs)`).join(', ')}`,
      )
      .join('; ')}`,
  ],
});
