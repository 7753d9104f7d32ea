/**
 * CPU cost per request of a server process, robust to a loaded machine: what a request costs
 * the server (its user + system CPU time, `process.cpuUsage()` read in the server over IPC)
 * does not depend on how much of the CPU the server got, only on the work it did, where
 * throughput (req/s) moves with every other process on the machine.
 *
 * Method (`measureCost`): every app gets a warm-up batch, then rounds; in each round every app
 * in turn (the order rotates each round) is sent a batch of `requests` POSTs over `connections`
 * keep-alive connections; the server's CPU time is read before and after while it is idle, so
 * the difference holds exactly the batch. Per app, the median over the rounds is the figure.
 * The CPU clock of a process still moves a little with the machine's load (caches, frequency),
 * which interleaving the apps and taking medians spreads over all of them alike.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Pool } from 'undici';
import { median } from '../lib/report.js';
import { BODY, PATH } from './contract.js';

export interface CostApp {
  variant: string;
  child: ChildProcess;
  url: string;
}

export interface CostResult {
  /** CPU microseconds per request, one figure per round. */
  perRound: number[];
  /** The median over the rounds. */
  us: number;
  /** The system (kernel) share of `us`: the median round's system time per request. */
  systemUs: number;
}

async function cpuOf(child: ChildProcess): Promise<{ user: number; system: number }> {
  const got = once(child, 'message') as Promise<[{ cpu?: { user: number; system: number } }]>;
  child.send('cpu');
  const [msg] = await got;
  if (msg.cpu === undefined) throw new Error('the app did not answer "cpu"');
  return msg.cpu;
}

/** `n` POSTs of the bench route over `connections` connections; every answer must be a 201. */
async function drive(pool: Pool, n: number, connections: number, variant: string): Promise<void> {
  let sent = 0;
  const worker = async () => {
    while (sent < n) {
      sent++;
      const res = await pool.request({
        path: PATH,
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: BODY,
      });
      const text = await res.body.text();
      if (res.statusCode !== 201) {
        throw new Error(`${variant}: expected 201, got ${res.statusCode}: ${text.slice(0, 200)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(connections, n) }, worker));
}

/** CPU microseconds per request of each app, interleaved rounds; see the file's comment. */
export async function measureCost(
  apps: readonly CostApp[],
  opts: {
    requests: number;
    warmup: number;
    rounds: number;
    connections: number;
    log?: (line: string) => void;
  },
): Promise<Map<CostApp, CostResult>> {
  const pools = new Map(
    apps.map((a) => [a, new Pool(a.url, { connections: opts.connections, pipelining: 1 })]),
  );
  const per = new Map<CostApp, number[]>(apps.map((a) => [a, []]));
  const sys = new Map<CostApp, number[]>(apps.map((a) => [a, []]));
  try {
    for (const a of apps)
      await drive(pools.get(a) as Pool, opts.warmup, opts.connections, a.variant);
    for (let round = 0; round < opts.rounds; round++) {
      const shift = round % apps.length;
      const order = [...apps.slice(shift), ...apps.slice(0, shift)];
      for (const a of order) {
        const before = await cpuOf(a.child);
        await drive(pools.get(a) as Pool, opts.requests, opts.connections, a.variant);
        const after = await cpuOf(a.child);
        const system = (after.system - before.system) / opts.requests;
        per.get(a)?.push((after.user - before.user) / opts.requests + system);
        sys.get(a)?.push(system);
      }
      opts.log?.(
        `  cost round ${round + 1}: ${apps.map((a) => `${a.variant} ${(per.get(a)?.at(-1) ?? 0).toFixed(1)} µs (system ${(sys.get(a)?.at(-1) ?? 0).toFixed(1)})`).join(', ')}`,
      );
    }
  } finally {
    await Promise.all([...pools.values()].map((p) => p.close()));
  }
  return new Map(
    apps.map((a) => {
      const xs = per.get(a) as number[];
      const m = median(xs);
      // The system time of the round closest to the median.
      const at = xs.reduce(
        (best, x, i) => (Math.abs(x - m) < Math.abs((xs[best] as number) - m) ? i : best),
        0,
      );
      return [a, { perRound: xs, us: m, systemUs: (sys.get(a) as number[])[at] as number }];
    }),
  );
}
