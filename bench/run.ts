/**
 * `npm run bench`: runs every benchmark in this folder, one at a time in its own process (so
 * they do not disturb each other), then writes bench/results.md (absolute figures and ratios
 * against the peers, with the machine described) and bench/results/chart.svg.
 *
 *   npm run bench                 # all areas
 *   npm run bench -- client gateway   # only these areas
 *   npm run bench -- --render         # run nothing; rewrite results.md and the chart from results/
 *
 * Layout: one folder per area, its entry point named main.ts, beside the child processes and
 * helpers only it uses; shared helpers in lib/ (report: result files; chart: the SVG).
 *   client/main.ts          the typed client against undici
 *   discovery/main.ts       balancers (pick.ts: one balancer per process; sim.ts: virtual-time
 *                           simulation; watcher.ts: an etcd watcher process)
 *   gateway/main.ts         the gateway against its peers (server.ts: a gateway or upstream
 *                           process); gateway/soak.ts: the long soak (its own entry point)
 *   resilience/main.ts      policies against opossum and cockatiel
 *   server/main.ts          adapter cost under load (apps.ts: the server processes);
 *                           server/instructions.ts: instructions per request under callgrind
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { renderChart } from './lib/chart.js';
import { type BenchResult, benchEntries, entryOf } from './lib/report.js';

const here = import.meta.dirname;
const resultsDir = join(here, 'results');
mkdirSync(resultsDir, { recursive: true });

// Areas in the order they run; each is an entry point (bench/<area>/main.ts, see benchEntries)
// and writes results/<area>.json.
const order = Object.keys(benchEntries);
const renderOnly = process.argv.includes('--render');
const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const areas = renderOnly
  ? []
  : order.filter(
      (a) =>
        existsSync(join(here, benchEntries[a] ?? '')) && (only.length === 0 || only.includes(a)),
    );

const failures: string[] = [];
for (const area of areas) {
  console.log(`\n=== bench: ${area}`);
  const r = spawnSync(
    process.execPath,
    ['--import', 'tsx', '--expose-gc', join(here, benchEntries[area] ?? '')],
    {
      stdio: 'inherit',
      cwd: here,
      env: { ...process.env, NODE_ENV: 'production' },
    },
  );
  if (r.status !== 0) failures.push(`${area} (exit ${r.status ?? r.signal})`);
}

const results: BenchResult[] = readdirSync(resultsDir)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(resultsDir, f), 'utf8')) as BenchResult)
  // `server-v24` and the like (the same bench on another runtime) follow their area.
  .sort(
    (a, b) =>
      order.indexOf(a.area.split('-')[0] ?? a.area) -
        order.indexOf(b.area.split('-')[0] ?? b.area) || a.area.localeCompare(b.area),
  );

const cpu = cpus()[0]?.model ?? 'unknown CPU';
const machine = `${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB RAM, Node ${process.version}, ${process.platform}/${process.arch}`;
const fmt = (v: number) =>
  Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(3);

let md = `# Benchmark results

<!-- Written by \`npm run bench\` (bench/run.ts). Do not edit by hand. -->

Machine: ${machine}.
Each area ran in its own process, one after another; peers ran in the same process run as
Trellis, against the same servers. Ratios are Trellis ÷ peer for throughput-like figures and
peer ÷ Trellis for cost-like figures (so above 1 is always better for Trellis), as each row says.

![Gateway and client throughput](results/chart.svg)
`;
for (const res of results) {
  md += `\n## ${res.title ?? res.area}\n\n`;
  if (res.setup) md += `${res.setup}\n\n`;
  md += `Measured ${res.date ?? ''} with \`${res.command ?? `npx tsx ${entryOf(res.area)}`}\`.\n\n`;
  md +=
    '| measurement | value | unit | compared with | ratio | target | met |\n| --- | --- | --- | --- | --- | --- | --- |\n';
  for (const row of res.rows) {
    md += `| ${row.name} | ${fmt(row.value)} | ${row.unit} | ${row.peer ?? ''} | ${row.ratio === undefined ? '' : `${fmt(row.ratio)}×`} | ${row.target ?? ''} | ${row.pass === undefined ? '' : row.pass ? 'yes' : '**no**'} |\n`;
  }
  if (res.notes?.length) md += `\n${res.notes.map((n) => `- ${n}`).join('\n')}\n`;
}
if (failures.length) md += `\n**Benchmarks that failed to run:** ${failures.join(', ')}\n`;
writeFileSync(join(here, 'results.md'), md);
writeFileSync(join(resultsDir, 'chart.svg'), renderChart(results));
console.log(`\nwrote bench/results.md and bench/results/chart.svg (${results.length} areas)`);
const missed = results.flatMap((r) =>
  r.rows.filter((row) => row.pass === false).map((row) => `${r.area}: ${row.name}`),
);
if (missed.length) console.log(`targets missed:\n  ${missed.join('\n  ')}`);
if (failures.length) {
  console.error(`failed: ${failures.join(', ')}`);
  process.exit(1);
}
