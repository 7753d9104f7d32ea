/**
 * One service of the distributed variant in its own process, registered in etcd:
 *
 *   node --import tsx src/process.ts <catalog|inventory-a|inventory-b|orders|gateway> \
 *     --etcd http://127.0.0.1:2379 [--redis redis://127.0.0.1:6379] [--port 0] \
 *     [--postgres postgres://postgres@127.0.0.1:5432/orders]
 *
 * or, without etcd (the consistency demo), with static addresses:
 *
 *   ... orders --catalog http://127.0.0.1:8081 --inventory http://127.0.0.1:8082
 *
 * `--postgres` is the database of the service's own (orders, inventory); without it the process
 * keeps its data in an embedded PGlite (gone when the process ends). Prints `READY <role> <url>
 * <status page url>` once it serves. SIGTERM or SIGINT runs core's shutdown sequence, which
 * revokes the etcd lease (deregistration) before connections close.
 */
import { parseArgs } from 'node:util';
import { createHealth, type Resolver } from '@trellis/core';
import { etcdDiscovery, instanceFromUrl, selfRegister, staticDiscovery } from '@trellis/discovery';
import { createGateway } from '@trellis/gateway';
import { startCatalog } from './catalog/service.js';
import { openDatabase, type ShopDb } from './db.js';
import { shopGatewayConfig } from './gateway.js';
import { startInventory } from './inventory/service.js';
import { startOrders } from './orders/service.js';
import { type ServiceHandle, shopLogger } from './service.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    etcd: { type: 'string' },
    redis: { type: 'string' },
    port: { type: 'string', default: '0' },
    postgres: { type: 'string' },
    catalog: { type: 'string' },
    inventory: { type: 'string' },
    'lease-ms': { type: 'string' },
    verbose: { type: 'boolean', default: false },
  },
});
const role = positionals[0] ?? '';
if (!values.etcd && (role === 'gateway' || (role === 'orders' && !values.inventory)))
  throw new Error('--etcd <url> is required (or, for orders, --catalog and --inventory)');
const port = Number(values.port);
const logger = shopLogger(role, { quiet: !values.verbose });
const etcd = values.etcd ? etcdDiscovery({ endpoints: [values.etcd], logger }) : undefined;
const resolver: Resolver =
  etcd ??
  staticDiscovery({
    services: {
      catalog: values.catalog ? [values.catalog] : [],
      inventory: values.inventory ? values.inventory.split(',') : [],
    },
  });
const drainDelayMs = 500;

// A signal before the service is ready (a Ctrl-C during startup): nothing to drain yet, exit now
// (a registration already made expires with its lease). Replaced by the graceful handler below.
const early = () => process.exit(0);
process.once('SIGINT', early);
process.once('SIGTERM', early);

let stop: () => Promise<void>;
let url: string;
let adminUrl = '';
let db: ShopDb | undefined;

if (role === 'gateway') {
  const health = createHealth({
    serviceId: 'gateway',
    drainDelayMs,
    signals: false,
    exit: false,
    logger,
  });
  const gateway = createGateway(
    shopGatewayConfig(
      values.redis ? { redisUrl: values.redis, ordersLimit: { limit: 5, windowMs: 60_000 } } : {},
    ),
    { resolver, logger, health },
  );
  const address = await gateway.listen(port, '127.0.0.1');
  url = `http://127.0.0.1:${address.port}`;
  stop = async () => {
    await gateway.close();
    health.close();
  };
} else {
  let service: ServiceHandle;
  let name: string;
  if (role === 'catalog') {
    service = await startCatalog({ port, drainDelayMs, logger });
    name = 'catalog';
  } else if (role === 'inventory-a' || role === 'inventory-b') {
    db = await openDatabase(values.postgres);
    service = await startInventory({
      port,
      drainDelayMs,
      logger,
      instance: role.slice(-1),
      db,
      ...(values['lease-ms'] && { idempotencyLeaseMs: Number(values['lease-ms']) }),
    });
    name = 'inventory';
  } else if (role === 'orders') {
    db = await openDatabase(values.postgres);
    service = await startOrders({
      port,
      drainDelayMs,
      logger,
      resolver,
      db,
      // A relay killed mid-batch frees its claimed messages after this lease.
      ...(values['lease-ms'] && { relay: { leaseMs: Number(values['lease-ms']) } }),
    });
    name = 'orders';
  } else {
    throw new Error(`unknown role "${role}"`);
  }
  // Registered with a 5 s lease: a crashed process disappears from discovery 5 s later; a
  // stopped one is deregistered at once by its shutdown sequence.
  if (etcd)
    await selfRegister({
      registrar: etcd,
      instance: instanceFromUrl(service.url),
      options: { service: name, ttlSeconds: 5 },
      health: service.health,
      logger,
    });
  url = service.url;
  adminUrl = service.adminUrl;
  stop = async () => {
    await service.stop();
    await db?.close();
  };
}

console.log(`READY ${role} ${url} ${adminUrl}`);
process.off('SIGINT', early);
process.off('SIGTERM', early);
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    stop()
      .then(() => etcd?.close() ?? resolver.close?.())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(`[${role}] shutdown failed`, err);
          process.exit(1);
        },
      );
  });
}
