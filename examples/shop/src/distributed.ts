/**
 * `npm run start:distributed`: the same system spread over processes, discovered through etcd,
 * with two gateways that share their rate limits in Redis. Starts etcd and Redis itself (on free
 * loopback ports) when `etcd` and `redis-server` are installed
 * (`apt-get install etcd-server redis-server`).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { findBinary, startEtcd, startRedis } from '../../../testing/engines.js';
import { demoToken } from './token.js';

export interface DistributedShop {
  readonly gateways: readonly string[];
  readonly services: Readonly<Record<string, string>>;
  stop(): Promise<void>;
}

export async function startDistributedShop(
  options: { quiet?: boolean } = {},
): Promise<DistributedShop> {
  for (const bin of ['etcd', 'redis-server']) {
    if (!findBinary(bin))
      throw new Error(`${bin} is not installed (apt-get install etcd-server redis-server)`);
  }
  const etcd = await startEtcd();
  const redis = await startRedis();
  const children: ChildProcess[] = [];
  const spawnRole = async (role: string): Promise<string> => {
    const child = spawn(
      process.execPath,
      [
        '--import',
        'tsx',
        join(import.meta.dirname, 'process.ts'),
        role,
        '--etcd',
        etcd.endpoint,
        '--redis',
        redis.url,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'], env: process.env },
    );
    children.push(child);
    let buffered = '';
    return new Promise<string>((resolve, reject) => {
      child.once('exit', (code) =>
        reject(new Error(`${role} exited with ${code} before it was ready`)),
      );
      child.stdout?.on('data', (chunk: Buffer) => {
        buffered += chunk;
        const ready = new RegExp(`READY ${role} (\\S+)`).exec(buffered);
        if (ready) resolve(ready[1]!);
        if (!options.quiet)
          for (const line of String(chunk).split('\n'))
            if (line && !line.startsWith('READY')) console.log(line);
      });
    });
  };
  const services: Record<string, string> = {};
  try {
    for (const role of ['catalog', 'inventory-a', 'inventory-b', 'orders'])
      services[role] = await spawnRole(role);
    const gateways = [await spawnRole('gateway'), await spawnRole('gateway')];
    return {
      gateways,
      services,
      async stop() {
        // Gateways first, then the services (each deregisters itself from etcd), then engines.
        const stopAll = async (list: ChildProcess[]) => {
          await Promise.all(
            list.map(async (c) => {
              if (c.exitCode !== null) return;
              const exited = once(c, 'exit');
              c.kill('SIGTERM');
              await exited;
            }),
          );
        };
        await stopAll(children.slice(4));
        await stopAll(children.slice(0, 4));
        await redis.stop();
        await etcd.destroy();
      },
    };
  } catch (err) {
    for (const c of children) c.kill('SIGKILL');
    await redis.stop();
    await etcd.destroy();
    throw err;
  }
}

if (process.argv[1] === import.meta.filename) {
  const shop = await startDistributedShop();
  const token = await demoToken('alice');
  const [g1, g2] = shop.gateways;
  console.log(`
Distributed Trellis shop is up: every service is its own process, registered in etcd with a lease;
two gateways share their rate limits through Redis.

  gateway 1     ${g1}
  gateway 2     ${g2}
${Object.entries(shop.services)
  .map(([k, v]) => `  ${k.padEnd(13)} ${v}`)
  .join('\n')}

Orders are limited to 5 per minute per customer across BOTH gateways (the 6th gets a 429):

  export TOKEN=${token}
  for i in 1 2 3 4; do for g in ${g1} ${g2}; do curl -s -o /dev/null -w "%{http_code} " $g/api/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"productId":"mug","quantity":1}'; done; done; echo

Ctrl-C stops everything: each service deregisters from etcd during its shutdown sequence.
`);
  let stopping = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      shop.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(err);
          process.exit(1);
        },
      );
    });
  }
}
