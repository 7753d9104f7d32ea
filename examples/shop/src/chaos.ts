/**
 * `npm run demo:chaos`: starts the shop on free ports, sends steady traffic through the
 * gateway, then makes inventory fail and slow down, and prints what Trellis does about it.
 *   --scale 0.5   shorter phases
 */
import { runChaos } from './chaosScenario.js';
import { startShop } from './shop.js';

const i = process.argv.indexOf('--scale');
const scale = i === -1 ? 1 : Number(process.argv[i + 1]);

console.log(`Starting the shop (quiet logs) and driving 10 orders/s + 10 quotes/s through the gateway.
orders -> inventory runs: retry (3 attempts, 20% budget) -> circuit breaker (opens at 50% failures
over 10 s, half-open after 3 s) -> 400 ms timeout per attempt; instances picked by peak EWMA with
outlier ejection; quotes fall back to "availability unknown" when inventory cannot answer.`);
const shop = await startShop({ quiet: true });
console.log(`
Open the orders status page in a browser now and watch it live while the demo runs: the
inventory breaker opening and closing, instances ejected and restored, the retry budget:

  ${shop.orders.adminUrl}

(inventory-a: ${shop.inventory[0].adminUrl}  inventory-b: ${shop.inventory[1].adminUrl})
Orders are written with their order-placed message in one transaction (the outbox); a relay
delivers them to inventory, so orders keep being accepted while inventory is down and are
reserved, each exactly once, when it recovers.`);
try {
  await runChaos(shop, { scale });
} finally {
  await shop.stop();
}
console.log('\nDone: every service shut down gracefully.');
