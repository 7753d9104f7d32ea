/**
 * `npm run start:distributed`: the same system spread over processes, discovered through etcd,
 * with two gateways that share their rate limits in Redis, and orders and inventory keeping
 * their data in Postgres (a database each: `orders`, `inventory`, on one throwaway server).
 * Starts etcd, Redis and Postgres itself (on free loopback ports) when `etcd`, `redis-server`
 * and Postgres are installed (`apt-get install etcd-server redis-server postgresql`). Without
 * Postgres each of those processes falls back to an embedded PGlite of its own.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import pg from 'pg';
import {
  findBinary,
  hasEngine,
  type PostgresHandle,
  startEtcd,
  startPostgres,
  startRedis,
} from '../../../testing/engines.js';
import { demoToken } from './token.js';

export interface DistributedShop {
  readonly gateways: readonly string[];
  readonly services: Readonly<Record<string, string>>;
  /** The engines' addresses: etcd's client URL and Redis' URL. */
  readonly engines: { readonly etcd: string; readonly redis: string; readonly postgres?: string };
  /** Each service's status page (admin listener on loopback). */
  readonly statusPages: Readonly<Record<string, string>>;
  /** Gateways first, then the services (each deregisters from etcd), then Redis and etcd. */
  stop(): Promise<void>;
}

export interface DistributedShopOptions {
  /** Do not print the services' log lines. */
  quiet?: boolean;
  /**
   * Start etcd and Redis in their own process group (the command line does), so a terminal's
   * Ctrl-C reaches only the services: they deregister from etcd while etcd still runs, and
   * `stop()` stops the engines last.
   */
  detachEngines?: boolean;
}

export async function startDistributedShop(
  options: DistributedShopOptions = {},
): Promise<DistributedShop> {
  for (const bin of ['etcd', 'redis-server']) {
    if (!findBinary(bin))
      throw new Error(`${bin} is not installed (apt-get install etcd-server redis-server)`);
  }
  const detached = options.detachEngines === true;
  const etcd = await startEtcd({ detached });
  const redis = await startRedis({ detached }).catch(async (err: unknown) => {
    await etcd.destroy();
    throw err;
  });
  let postgres: PostgresHandle | undefined;
  if (hasEngine('postgres')) {
    postgres = await startPostgres({ detached }).catch(async (err: unknown) => {
      await redis.stop();
      await etcd.destroy();
      throw err;
    });
    // A database per service that owns data.
    const admin = new pg.Client({ connectionString: postgres.url });
    await admin.connect();
    for (const name of ['orders', 'inventory']) await admin.query(`CREATE DATABASE ${name}`);
    await admin.end();
  }
  const databaseOf = (role: string): string[] => {
    const service = role.startsWith('inventory') ? 'inventory' : role;
    if (!postgres || !['orders', 'inventory'].includes(service)) return [];
    return ['--postgres', postgres.url.replace(/\/postgres$/, `/${service}`)];
  };
  if (detached) {
    // Detached engines outlive this process unless it stops them: on any exit, signal them
    // (a no-op after stop(); kill() and stop() signal synchronously).
    process.once('exit', () => {
      void etcd.kill();
      void redis.stop();
      void postgres?.kill();
    });
  }
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
        ...databaseOf(role),
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
        const ready = new RegExp(`READY ${role} (\\S+) ?(\\S*)`).exec(buffered);
        if (ready) {
          if (ready[2]) statusPages[role] = ready[2];
          resolve(ready[1]!);
        }
        if (!options.quiet)
          for (const line of String(chunk).split('\n'))
            if (line && !line.startsWith('READY')) console.log(line);
      });
    });
  };
  const services: Record<string, string> = {};
  const statusPages: Record<string, string> = {};
  try {
    // Two at a time (each process pays its own start-up); inventory-a creates inventory's tables
    // before inventory-b starts. `children` keeps the spawn order: services, then gateways.
    for (const pair of [
      ['catalog', 'inventory-a'],
      ['inventory-b', 'orders'],
    ]) {
      const urls = await Promise.all(pair.map((role) => spawnRole(role)));
      pair.forEach((role, i) => {
        services[role] = urls[i]!;
      });
    }
    const gateways = await Promise.all([spawnRole('gateway'), spawnRole('gateway')]);
    return {
      gateways,
      services,
      engines: {
        etcd: etcd.endpoint,
        redis: redis.url,
        ...(postgres && { postgres: postgres.url.replace(/\/postgres$/, '') }),
      },
      statusPages,
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
        await postgres?.destroy();
        await redis.stop();
        await etcd.destroy();
      },
    };
  } catch (err) {
    for (const c of children) c.kill('SIGKILL');
    await postgres?.destroy();
    await redis.stop();
    await etcd.destroy();
    throw err;
  }
}

if (process.argv[1] === import.meta.filename) {
  // Ctrl-C in a terminal sends SIGINT to the whole foreground process group: this process and
  // the services (which start their own shutdown on it), but not the engines (detached). Stop
  // everything in order and exit 0. A signal during startup stops as soon as startup ends.
  let stopping = false;
  let shop: DistributedShop | undefined;
  const stopAndExit = (): void => {
    if (!shop) return;
    shop.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (stopping) return;
      stopping = true;
      stopAndExit();
    });
  }
  try {
    shop = await startDistributedShop({ detachEngines: true });
  } catch (err) {
    // Services that got the same Ctrl-C exit before they are ready: not an error then.
    if (stopping) process.exit(0);
    throw err;
  }
  if (stopping) stopAndExit();
  else await printBanner(shop);
}

async function printBanner(shop: DistributedShop): Promise<void> {
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
  etcd          ${shop.engines.etcd}
  redis         ${shop.engines.redis}
  postgres      ${shop.engines.postgres ?? '(not installed: orders and inventory use an embedded PGlite each)'}

Status pages (breakers, balancers, retry budgets, health; live):
${Object.entries(shop.statusPages)
  .map(([k, v]) => `  ${k.padEnd(13)} ${v}`)
  .join('\n')}

Orders are limited to 5 per minute per customer across BOTH gateways (the 6th gets a 429):

  export TOKEN=${token}
  for i in 1 2 3 4; do for g in ${g1} ${g2}; do curl -s -o /dev/null -w "%{http_code} " $g/api/orders -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' -d '{"productId":"mug","quantity":1}'; done; done; echo

Ctrl-C stops everything: each service deregisters from etcd during its shutdown sequence, then
Postgres, etcd and Redis stop.
`);
}
