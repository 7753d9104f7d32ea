/**
 * The chaos demo as a function: drives steady traffic through the gateway while inventory
 * misbehaves, and reports, second by second, what the resilience pieces do.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { consistencyCounts, describeCounts } from './consistencyCounts.js';
import type { Shop } from './shop.js';
import { demoToken } from './token.js';

export interface ChaosPhase {
  readonly name: string;
  readonly seconds: number;
  readonly apply: (shop: Shop) => void;
}

export interface ChaosOptions {
  /** Multiplies every phase length (tests use a small value). Default 1. */
  readonly scale?: number;
  /** Requests per second of each kind (orders and quotes). Default 10. */
  readonly rate?: number;
  readonly print?: (line: string) => void;
}

export interface SecondReport {
  readonly phase: string;
  /** Orders accepted (201: the order and its outbox message committed). */
  readonly ordersOk: number;
  readonly ordersFailed: number;
  /** Reservations the outbox relay got from inventory this second. */
  readonly reserved: number;
  readonly quotesOk: number;
  readonly quotesDegraded: number;
  /** Reservations this second by the inventory instance that made them. */
  readonly servedBy: Readonly<Record<string, number>>;
  readonly breaker: string;
  readonly retries: number;
  readonly budgetGiveUps: number;
  /** Failed orders by `status code` (e.g. `503 TRELLIS_CIRCUIT_OPEN`). */
  readonly failures: Readonly<Record<string, number>>;
}

const calm = (shop: Shop) => {
  for (const instance of shop.inventory) instance.chaos();
};

export const phases: readonly ChaosPhase[] = [
  { name: 'steady', seconds: 4, apply: calm },
  {
    name: 'inventory-a fails every request',
    seconds: 8,
    apply: (s) => s.inventory[0].chaos({ failRate: 1, delayMs: 0 }),
  },
  {
    name: 'all inventory slow (600 ms > 400 ms timeout)',
    seconds: 6,
    apply: (s) => {
      for (const instance of s.inventory) instance.chaos({ failRate: 0, delayMs: 600 });
    },
  },
  { name: 'recovered', seconds: 8, apply: calm },
];

export async function runChaos(shop: Shop, options: ChaosOptions = {}): Promise<SecondReport[]> {
  const scale = options.scale ?? 1;
  const rate = options.rate ?? 10;
  const print = options.print ?? ((line: string) => console.log(line));
  const token = await demoToken('chaos-monkey');
  const { breaker, retry, balancer } = shop.orders.inventory;

  let current = blank('steady', breaker.state);
  const offs = [
    breaker.onStateChange(({ from, to, reason }) =>
      print(`  [breaker] inventory ${from} -> ${to}${reason ? ` (${reason})` : ''}`),
    ),
    balancer.onEject(({ instance, reason, durationMs }) =>
      print(
        `  [balancer] ejected ${instance.url} (${reason}) for ${durationMs} ms: traffic moves to the other instance`,
      ),
    ),
    retry.onRetry(() => {
      current.retries++;
    }),
    retry.onGiveUp(({ reason }) => {
      if (reason === 'budget') current.budgetGiveUps++;
    }),
    shop.orders.onReservation(({ inventoryInstance }) => {
      current.reserved++;
      if (inventoryInstance)
        current.servedBy[inventoryInstance] = (current.servedBy[inventoryInstance] ?? 0) + 1;
    }),
  ];

  const order = async () => {
    const res = await fetch(`${shop.gatewayUrl}/api/orders`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ productId: 'mug', quantity: 1 }),
    });
    const body = (await res.json()) as { code?: string; error?: { code?: string } };
    if (res.status === 201) {
      current.ordersOk++;
    } else {
      current.ordersFailed++;
      // Gateway errors carry { error: { code } }; the orders service answers { code }.
      const why = `${res.status} ${body.error?.code ?? body.code ?? ''}${body.error?.code ? ' (gateway)' : ''}`;
      current.failures[why] = (current.failures[why] ?? 0) + 1;
    }
  };
  const quote = async () => {
    const res = await fetch(`${shop.gatewayUrl}/api/quotes/mug`);
    const body = (await res.json()) as { degraded?: boolean };
    if (res.status === 200) {
      current.quotesOk++;
      if (body.degraded) current.quotesDegraded++;
    }
  };

  const reports: SecondReport[] = [];
  const inflight = new Set<Promise<void>>();
  const fire = (fn: () => Promise<void>) => {
    const p = fn()
      .catch(() => {
        current.ordersFailed++;
      })
      .finally(() => inflight.delete(p));
    inflight.add(p);
  };

  try {
    for (const phase of phases) {
      phase.apply(shop);
      print(`\n== ${phase.name}`);
      const seconds = Math.max(1, Math.round(phase.seconds * scale));
      for (let s = 0; s < seconds; s++) {
        current = blank(phase.name, breaker.state);
        for (let i = 0; i < rate; i++) {
          fire(order);
          fire(quote);
          await delay(1_000 / rate);
        }
        const done = { ...current, breaker: breaker.state };
        reports.push(done);
        const served = Object.entries(done.servedBy)
          .map(([k, v]) => `${k.replace('inventory-', '')}:${v}`)
          .join(' ');
        const why = Object.entries(done.failures)
          .map(([k, v]) => `${v}× ${k}`)
          .join(', ');
        print(
          `  orders ${pad(done.ordersOk)} placed ${pad(done.ordersFailed)} failed${why ? ` [${why}]` : ''} | ${pad(done.reserved)} reserved by the relay | quotes ${pad(done.quotesOk)} ok (${done.quotesDegraded} degraded by the fallback) | served by ${served || '-'} | breaker ${done.breaker} | retries ${done.retries}${done.budgetGiveUps ? ` (budget stopped ${done.budgetGiveUps})` : ''}`,
        );
      }
    }
    await Promise.allSettled([...inflight]);
    // The outbox catches up: every order placed during the chaos gets its reservation.
    calm(shop);
    const until = Date.now() + 30_000;
    while ((await shop.orders.outbox.stats()).pending > 0 && Date.now() < until) {
      await delay(100);
    }
    const counts = await consistencyCounts(shop.databases.orders, shop.databases.inventory);
    print(`\n== after the chaos: ${describeCounts(counts)}`);
  } finally {
    for (const off of offs) off();
    calm(shop);
  }
  return reports;
}

function blank(phase: string, breaker: string) {
  return {
    phase,
    ordersOk: 0,
    ordersFailed: 0,
    quotesOk: 0,
    quotesDegraded: 0,
    servedBy: {} as Record<string, number>,
    breaker,
    reserved: 0,
    retries: 0,
    budgetGiveUps: 0,
    failures: {} as Record<string, number>,
  };
}

const pad = (n: number) => String(n).padStart(3);
