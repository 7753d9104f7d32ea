/**
 * Starts the whole example system in one process: catalog, two inventory instances, orders and
 * the gateway, wired by static discovery, each data-owning service with its own embedded PGlite
 * database (no external engine needed).
 */
import type { Logger } from '@trellis/core';
import { staticDiscovery } from '@trellis/discovery';
import { createGateway, type Gateway } from '@trellis/gateway';
import { startCatalog } from './catalog/service.js';
import { openDatabase, type ShopDb } from './db.js';
import { shopGatewayConfig } from './gateway.js';
import { type InventoryHandle, startInventory } from './inventory/service.js';
import { type Fulfilment, type OrdersHandle, startOrders } from './orders/service.js';
import { type ServiceHandle, shopLogger } from './service.js';

export interface ShopPorts {
  gateway: number;
  catalog: number;
  inventory: [number, number];
  orders: number;
}

export interface ShopOptions {
  /** Fixed ports, or 0 everywhere (the default) for free ones. */
  readonly ports?: ShopPorts;
  /** Core's drain delay for every service. Default 1000 ms (a real service: ~5 s). */
  readonly drainDelayMs?: number;
  /** Only warnings and errors are printed when true. */
  readonly quiet?: boolean;
  readonly logger?: (service: string) => Logger;
  /** When orders are packed and shipped after being placed (simulated). Default 2 s and 5 s. */
  readonly fulfilment?: Fulfilment;
}

export interface Shop {
  readonly gatewayUrl: string;
  readonly gateway: Gateway;
  readonly catalog: ServiceHandle;
  readonly inventory: readonly [InventoryHandle, InventoryHandle];
  readonly orders: OrdersHandle;
  /** The services' own databases (PGlite): orders', and inventory's (shared by its instances). */
  readonly databases: { readonly orders: ShopDb; readonly inventory: ShopDb };
  /** Graceful shutdown: the gateway first, then orders, then the services orders calls. */
  stop(): Promise<void>;
}

export async function startShop(options: ShopOptions = {}): Promise<Shop> {
  const ports = options.ports ?? { gateway: 0, catalog: 0, inventory: [0, 0], orders: 0 };
  const drainDelayMs = options.drainDelayMs ?? 1_000;
  const log =
    options.logger ?? ((name: string) => shopLogger(name, { quiet: options.quiet ?? false }));
  const started: ServiceHandle[] = [];
  // One database per service that owns data: inventory's is shared by its two instances.
  const [ordersDb, inventoryDb] = await Promise.all([openDatabase(), openDatabase()]);
  const closeDatabases = () => Promise.all([ordersDb.close(), inventoryDb.close()]);
  try {
    const catalog = await startCatalog({
      port: ports.catalog,
      drainDelayMs,
      logger: log('catalog'),
    });
    started.push(catalog);
    const inventoryA = await startInventory({
      port: ports.inventory[0],
      drainDelayMs,
      instance: 'a',
      db: inventoryDb,
      logger: log('inventory-a'),
    });
    started.push(inventoryA);
    const inventoryB = await startInventory({
      port: ports.inventory[1],
      drainDelayMs,
      instance: 'b',
      db: inventoryDb,
      logger: log('inventory-b'),
    });
    started.push(inventoryB);

    const discovery = staticDiscovery({
      services: { catalog: [catalog.url], inventory: [inventoryA.url, inventoryB.url] },
    });
    const orders = await startOrders({
      port: ports.orders,
      drainDelayMs,
      resolver: discovery,
      db: ordersDb,
      logger: log('orders'),
      ...(options.fulfilment !== undefined && { fulfilment: options.fulfilment }),
    });
    started.push(orders);
    discovery.set('orders', [orders.url]);

    const gateway = createGateway(shopGatewayConfig(), {
      resolver: discovery,
      logger: log('gateway'),
    });
    const { port } = await gateway.listen(ports.gateway, '127.0.0.1');

    let stopping: Promise<void> | undefined;
    return {
      gatewayUrl: `http://127.0.0.1:${port}`,
      gateway,
      catalog,
      inventory: [inventoryA, inventoryB],
      orders,
      databases: { orders: ordersDb, inventory: inventoryDb },
      stop() {
        stopping ??= (async () => {
          // Every service fails readiness and starts draining at once; the gateway closes
          // first so no new request reaches the services while they drain.
          const services = Promise.all(
            [catalog, inventoryA, inventoryB, orders].map((s) => s.stop()),
          );
          await gateway.close();
          await services;
          await discovery.close();
          await closeDatabases();
        })();
        return stopping;
      },
    };
  } catch (err) {
    await Promise.allSettled(started.map((s) => s.stop()));
    await closeDatabases();
    throw err;
  }
}
