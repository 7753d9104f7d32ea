/**
 * Gateway soak: a fixed request rate through the Trellis gateway for a long time, reporting the
 * gateway process's heap (after a forced GC) and open sockets at the start and at the end.
 *
 *   npx turbo run build --filter=@trellis/gateway
 *   npx tsx bench/gateway/soak.ts                 # 10 minutes at 2000 req/s
 *   SOAK_SECONDS=30 SOAK_RATE=1000 npx tsx bench/gateway/soak.ts
 *
 * The upstream and the gateway run in their own processes (bench/gateway/server.ts); autocannon
 * drives the load from this process at `SOAK_RATE` requests per second over 50 connections.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import autocannon from 'autocannon';

const seconds = Number(process.env.SOAK_SECONDS ?? 600);
const rate = Number(process.env.SOAK_RATE ?? 2000);
const here = import.meta.dirname;
const children: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const port = (s.address() as { port: number }).port;
  s.close();
  await once(s, 'close');
  return port;
}

async function start(
  kind: string,
  upstreamPort?: number,
): Promise<{ port: number; child: ChildProcess }> {
  const port = await freePort();
  const args = [kind, String(port)];
  if (upstreamPort !== undefined) args.push(String(upstreamPort));
  const child = fork(join(here, 'server.ts'), args, {
    execArgv: ['--import', 'tsx', '--expose-gc'],
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    env: { ...process.env, NODE_ENV: 'production' },
  });
  children.push(child);
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${kind} exited with ${code}`)));
    child.stdout?.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) resolve();
    });
  });
  return { port, child };
}

interface Stats {
  heapUsed: number;
  sockets: number;
}
async function stats(child: ChildProcess): Promise<Stats> {
  child.send('stats');
  const [msg] = (await once(child, 'message')) as [Stats];
  return msg;
}

const mb = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

try {
  const upstream = await start('upstream');
  const gw = await start('trellis', upstream.port);
  const url = `http://127.0.0.1:${gw.port}/api/hello`;
  // Warm up for a few seconds so the start figures are not the cold process.
  await autocannon({ url, connections: 50, duration: 3, overallRate: rate });
  const first = await stats(gw.child);
  console.log(`start: heap ${mb(first.heapUsed)}, open sockets ${first.sockets}`);
  const samples: Stats[] = [first];
  const timer = setInterval(
    () => {
      void stats(gw.child).then((s) => {
        samples.push(s);
        console.log(`  heap ${mb(s.heapUsed)}, open sockets ${s.sockets}`);
      });
    },
    Math.max(5_000, (seconds * 1000) / 10),
  );
  const result = await autocannon({ url, connections: 50, duration: seconds, overallRate: rate });
  clearInterval(timer);
  // Let keep-alive connections idle out of the picture, then measure.
  await new Promise((r) => setTimeout(r, 500));
  const last = await stats(gw.child);
  console.log(`end:   heap ${mb(last.heapUsed)}, open sockets ${last.sockets}`);
  console.log(
    `requests ${result.requests.total}, ${result.requests.average.toFixed(0)} req/s average (target ${rate}), non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}, p99 ${result.latency.p99} ms`,
  );
  const growth = last.heapUsed - first.heapUsed;
  console.log(
    `heap growth ${mb(growth)} over ${seconds} s; sockets ${first.sockets} -> ${last.sockets}`,
  );
} finally {
  for (const c of children) c.kill();
}
