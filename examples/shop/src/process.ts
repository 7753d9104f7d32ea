/**
 * One service of the distributed variant in its own process, registered in etcd:
 *
 *   node --import tsx src/process.ts <catalog|inventory-a|inventory-b|orders|gateway> \
 *     --etcd http://127.0.0.1:2379 [--redis redis://127.0.0.1:6379] [--port 0]
 *
 * Prints `READY <url>` once it serves. SIGTERM or SIGINT runs core's shutdown sequence, which
 * revokes the etcd lease (deregistration) before connections close.
 */
import { parseArgs } from 'node:util';
import { createHealth } from '@trellis/core';
import { etcdDiscovery, instanceFromUrl, selfRegister } from '@trellis/discovery';
import { createGateway } from '@trellis/gateway';
import { startCatalog } from './catalog/service.js';
import { shopGatewayConfig } from './gateway.js';
import { startInventory } from './inventory/service.js';
import { startOrders } from './orders/service.js';
import { demoLogger, type ServiceHandle } from './service.js';

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    etcd: { type: 'string' },
    redis: { type: 'string' },
    port: { type: 'string', default: '0' },
  },
});
const role = positionals[0] ?? '';
if (!values.etcd) throw new Error('--etcd <url> is required');
const port = Number(values.port);
const logger = demoLogger(role, true);
const etcd = etcdDiscovery({ endpoints: [values.etcd], logger });
const drainDelayMs = 500;

let stop: () => Promise<void>;
let url: string;

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
    { resolver: etcd, logger, health },
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
    service = await startInventory({ port, drainDelayMs, logger, instance: role.slice(-1) });
    name = 'inventory';
  } else if (role === 'orders') {
    service = await startOrders({ port, drainDelayMs, logger, resolver: etcd });
    name = 'orders';
  } else {
    throw new Error(`unknown role "${role}"`);
  }
  // Registered with a 5 s lease: a crashed process disappears from discovery 5 s later; a
  // stopped one is deregistered at once by its shutdown sequence.
  await selfRegister({
    registrar: etcd,
    instance: instanceFromUrl(service.url),
    options: { service: name, ttlSeconds: 5 },
    health: service.health,
    logger,
  });
  url = service.url;
  stop = () => service.stop();
}

console.log(`READY ${role} ${url}`);
let stopping = false;
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    if (stopping) return;
    stopping = true;
    stop()
      .then(() => etcd.close())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          console.error(`[${role}] shutdown failed`, err);
          process.exit(1);
        },
      );
  });
}
