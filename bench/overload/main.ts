/**
 * bench/overload/main.ts: the overload benchmark with real processes (issue 22). A service
 * (bench/overload/service.ts, its own process) with a known capacity (10 downstream slots x
 * 20 ms, about 500 req/s) is offered 0.5x, 1x, 2x and 4x its capacity by an open-loop load
 * generator (this process: requests leave on a fixed schedule whatever the answers do), whose
 * callers give up after 500 ms and say so in `x-trellis-deadline-ms: 500`.
 *
 * Per protection (none, @fastify/under-pressure with event-loop delay 50 ms, a static bulkhead
 * tuned to the capacity (10 + queue 10), an untuned one (200), Trellis' `shed` with
 * `adaptiveLimit()` and default options) it prints goodput (answers in time per second), the
 * p99 of the answers received (callers abort at 500 ms, so late answers are counted as
 * late, not timed), the share of the service's work done for callers that had given up, and
 * 503s. Scenarios: `wait` (above), `drop` (the downstream slows 20 -> 60 ms halfway), `cpu`
 * (2 ms of CPU per request).
 *
 * Wasted work is measured by the service from the moment it read the request: time a request
 * spent in the kernel's queue before the event loop got to it (the cpu scenario) is invisible to
 * it, so there the figure is a lower bound.
 *
 * Env: OVERLOAD_SECONDS (default 4), OVERLOAD_SCENARIOS (wait,drop,cpu), OVERLOAD_LOADS
 * (0.5,1,2,4), OVERLOAD_PROTECTIONS (none,under-pressure,bulkhead-tuned,bulkhead-200,trellis).
 * The machine is shared: figures are indicative; bench/overload/sim.ts is the deterministic one.
 *
 * Run: npx tsx bench/overload/main.ts
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { type BenchRow, writeResult } from '../lib/report.js';

const CAPACITY = 500;
const DEADLINE = 500;
const list = (v: string | undefined, d: string) => (v ?? d).split(',').filter(Boolean);
const seconds = Number(process.env.OVERLOAD_SECONDS ?? 4);
const scenarios = list(process.env.OVERLOAD_SCENARIOS, 'wait,drop,cpu');
const loads = list(process.env.OVERLOAD_LOADS, '0.5,1,2,4').map(Number);
const protections = list(
  process.env.OVERLOAD_PROTECTIONS,
  'none,under-pressure,bulkhead-tuned,bulkhead-200,trellis',
);

async function startService(
  protection: string,
  scenario: string,
): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(join(import.meta.dirname, 'service.ts'), [], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, PROTECTION: protection, SCENARIO: scenario },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [msg] = (await once(child, 'message')) as [{ port: number }];
  return { child, port: msg.port };
}

interface Cell {
  goodput: number;
  p99: number;
  late: number;
  rejected: number;
  wastedShare: number;
  sent: number;
}

async function run(protection: string, scenario: string, load: number): Promise<Cell> {
  const { child, port } = await startService(protection, scenario);
  const agent = new Agent({ connections: null, pipelining: 1 });
  const origin = `http://127.0.0.1:${port}`;
  // warm-up: a few calls at low rate
  for (let i = 0; i < 20; i++) {
    await request(`${origin}/work`, {
      dispatcher: agent,
      headers: { 'x-trellis-deadline-ms': '500' },
    }).then((r) => r.body.dump());
  }
  const rate = load * CAPACITY;
  const total = Math.round(rate * seconds);
  const latencies: number[] = [];
  let inTime = 0;
  let late = 0;
  let rejected = 0;
  const pending: Promise<void>[] = [];
  const t0 = performance.now();
  let sent = 0;
  let slowSent = false;
  await new Promise<void>((done) => {
    const tick = () => {
      const now = performance.now();
      if (scenario === 'drop' && !slowSent && now - t0 >= (seconds * 1000) / 2) {
        slowSent = true;
        child.send('slow');
      }
      const due = Math.min(total, Math.floor(((now - t0) / 1000) * rate));
      while (sent < due) {
        sent++;
        const start = performance.now();
        pending.push(
          request(`${origin}/work`, {
            dispatcher: agent,
            headers: { 'x-trellis-deadline-ms': String(DEADLINE) },
            signal: AbortSignal.timeout(DEADLINE),
          }).then(
            async (r) => {
              await r.body.dump();
              const ms = performance.now() - start;
              if (r.statusCode === 200) {
                latencies.push(ms);
                if (ms <= DEADLINE) inTime++;
                else late++;
              } else rejected++;
            },
            () => {
              late++;
            },
          ),
        );
      }
      if (sent >= total) done();
      else setTimeout(tick, 1);
    };
    tick();
  });
  await Promise.all(pending);
  child.send('stats');
  const [stats] = (await once(child, 'message')) as [{ workMs: number; wastedMs: number }];
  child.kill('SIGTERM');
  await once(child, 'exit');
  await agent.close();
  latencies.sort((a, b) => a - b);
  return {
    goodput: inTime / seconds,
    p99: latencies.length ? (latencies[Math.floor(latencies.length * 0.99)] as number) : 0,
    late,
    rejected,
    wastedShare: stats.workMs > 0 ? stats.wastedMs / stats.workMs : 0,
    sent,
  };
}

const rows: BenchRow[] = [];
console.log(
  'scenario | protection | load | goodput/s | p99 ms (received) | late or aborted | 503 | wasted work',
);
for (const scenario of scenarios) {
  for (const protection of protections) {
    for (const load of loads) {
      const c = await run(protection, scenario, load);
      console.log(
        `${scenario} | ${protection} | ${load}x | ${c.goodput.toFixed(0)} | ${c.p99.toFixed(0)} | ${c.late} | ${c.rejected} | ${(100 * c.wastedShare).toFixed(1)} %`,
      );
      rows.push({
        name: `${scenario} ${load}x ${protection}: goodput`,
        value: Math.round(c.goodput),
        unit: 'answers in time/s',
      });
      rows.push({
        name: `${scenario} ${load}x ${protection}: p99 received`,
        value: Math.round(c.p99),
        unit: 'ms',
      });
      rows.push({
        name: `${scenario} ${load}x ${protection}: wasted`,
        value: Number((100 * c.wastedShare).toFixed(1)),
        unit: '% of work',
      });
    }
  }
}
writeResult({
  area: 'overload',
  title: 'Overload protection, real processes (indicative: shared CPU, short runs)',
  setup: `${seconds} s per cell; open-loop undici load generator in the parent, Fastify service in a child`,
  command: 'npx tsx bench/overload/main.ts',
  rows,
});
