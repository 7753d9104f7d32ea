/**
 * Resilience policies: success-path overhead per call and the cost of many keyed breakers.
 *
 *   npx turbo run build --filter=@trellis/resilience && npx tsx bench/resilience/main.ts
 *
 * Overhead = time per call through the policy minus a bare call of the same already-resolved
 * async function, measured in the same process, in interleaved rounds (median of rounds).
 * Peers: cockatiel 3 `wrap(retry, circuitBreaker, timeout)` and opossum 9's breaker alone.
 */
import { circuitBreaker, keyedCircuitBreaker, pipeline, retry, timeout } from '@trellis/resilience';
import * as cockatiel from 'cockatiel';
import CircuitBreaker from 'opossum';
import { type BenchRow, writeResult } from '../lib/report.js';

const gc = (globalThis as { gc?: () => void }).gc;
const fn = async () => 1;

type Run = () => Promise<unknown>;

async function timeLoop(run: Run, n: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await run();
  return Number(process.hrtime.bigint() - t0) / n;
}

/** ns per call for each candidate, median over interleaved rounds. */
async function measure(candidates: Record<string, Run>, n = 50_000, rounds = 7) {
  const samples: Record<string, number[]> = {};
  for (const [name, run] of Object.entries(candidates)) {
    samples[name] = [];
    await timeLoop(run, 20_000); // warm up
  }
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(candidates)) {
      samples[name]?.push(await timeLoop(run, n));
    }
  }
  const median: Record<string, number> = {};
  for (const [name, list] of Object.entries(samples)) {
    const sorted = [...list].sort((a, b) => a - b);
    median[name] = sorted[Math.floor(sorted.length / 2)] as number;
  }
  return median;
}

// --- success-path overhead ---------------------------------------------------------------
const trellisStack = pipeline(retry(), circuitBreaker(), timeout(1000));
const trellisBreaker = circuitBreaker();
const trellisRetry = retry();
const trellisTimeout = timeout(1000);
const cockatielStack = cockatiel.wrap(
  cockatiel.retry(cockatiel.handleAll, {
    maxAttempts: 2,
    backoff: new cockatiel.ExponentialBackoff(),
  }),
  cockatiel.circuitBreaker(cockatiel.handleAll, {
    halfOpenAfter: 10_000,
    breaker: new cockatiel.ConsecutiveBreaker(5),
  }),
  cockatiel.timeout(1000, cockatiel.TimeoutStrategy.Aggressive),
);
const opossum = new CircuitBreaker(fn);

const ns = await measure({
  bare: () => fn(),
  trellisStack: () => trellisStack.execute(fn),
  cockatielStack: () => cockatielStack.execute(fn),
  trellisBreaker: () => trellisBreaker.execute(fn),
  opossumBreaker: () => opossum.fire(),
  trellisRetry: () => trellisRetry.execute(fn),
  trellisTimeout: () => trellisTimeout.execute(fn),
});
opossum.shutdown();

const bare = ns.bare as number;
const over = (name: string) => Math.max(0.001, ((ns[name] as number) - bare) / 1000);
const stackUs = over('trellisStack');
const cockatielUs = over('cockatielStack');
const breakerUs = over('trellisBreaker');
const opossumUs = over('opossumBreaker');
const retryUs = over('trellisRetry');
const timeoutUs = over('trellisTimeout');

// --- 10,000 keyed breakers ------------------------------------------------------------------
const KEYS = 10_000;
let timersPending = 0;
const countingClock = {
  now: () => performance.now(),
  setTimeout: (cb: () => void, ms: number) => {
    timersPending++;
    return setTimeout(() => {
      timersPending--;
      cb();
    }, ms);
  },
  clearTimeout: (t: unknown) => {
    timersPending--;
    clearTimeout(t as ReturnType<typeof setTimeout>);
  },
};
const activeTimeouts = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

function heapMb(): number {
  gc?.();
  gc?.();
  return process.memoryUsage().heapUsed / 2 ** 20;
}

const baseTimeouts = activeTimeouts();
const before = heapMb();
const keyed = keyedCircuitBreaker({
  failureRateThreshold: 0.5,
  consecutiveFailures: 5,
  clock: countingClock,
});
for (let i = 0; i < KEYS; i++) await keyed.get(`10.0.${i >> 8}.${i & 255}:8080`).execute(fn);
const keyedMb = heapMb() - before;
const idleTimers = timersPending + (activeTimeouts() - baseTimeouts);
keyed.close();
const afterCloseMb = heapMb() - before;
const sizeAfterClose = keyed.size;

const beforeOpossum = heapMb();
const opossums: CircuitBreaker[] = [];
for (let i = 0; i < KEYS; i++) {
  const b = new CircuitBreaker(fn);
  await b.fire();
  opossums.push(b);
}
const opossumMb = heapMb() - beforeOpossum;
for (const b of opossums) b.shutdown();

// --- report ---------------------------------------------------------------------------------
const rows: BenchRow[] = [
  { name: 'bare call (already-resolved async fn)', value: bare / 1000, unit: 'µs/call' },
  {
    name: 'trellis pipeline(retry, circuitBreaker, timeout) overhead',
    value: stackUs,
    unit: 'µs/call',
    target: '≤ 2 µs',
    pass: stackUs <= 2,
    chart: 'success-path overhead (µs/call)',
  },
  {
    name: 'cockatiel 3 wrap(retry, circuitBreaker, timeout) overhead',
    value: cockatielUs,
    unit: 'µs/call',
    chart: 'success-path overhead (µs/call)',
  },
  {
    name: 'trellis stack vs cockatiel stack (× less overhead)',
    value: cockatielUs / stackUs,
    unit: '×',
    peer: 'cockatiel@3',
    ratio: cockatielUs / stackUs,
    target: '≥ 7×',
    pass: cockatielUs / stackUs >= 7,
  },
  {
    name: 'trellis circuitBreaker alone overhead',
    value: breakerUs,
    unit: 'µs/call',
    chart: 'success-path overhead (µs/call)',
  },
  {
    name: 'opossum 9 breaker alone overhead',
    value: opossumUs,
    unit: 'µs/call',
    chart: 'success-path overhead (µs/call)',
  },
  {
    name: 'trellis breaker vs opossum breaker (× less overhead)',
    value: opossumUs / breakerUs,
    unit: '×',
    peer: 'opossum@9',
    ratio: opossumUs / breakerUs,
  },
  { name: 'trellis retry alone overhead (success path)', value: retryUs, unit: 'µs/call' },
  { name: 'trellis timeout alone overhead', value: timeoutUs, unit: 'µs/call' },
  {
    name: '10,000 keyed breakers (one call each): heap growth',
    value: keyedMb,
    unit: 'MB',
    target: '< 40 MB',
    pass: keyedMb < 40,
  },
  {
    name: '10,000 keyed breakers: timers while idle',
    value: idleTimers,
    unit: 'timers',
    target: '0',
    pass: idleTimers === 0,
  },
  {
    name: '10,000 keyed breakers after close(): breakers left / heap growth',
    value: sizeAfterClose,
    unit: `breakers (heap ${afterCloseMb.toFixed(1)} MB)`,
    target: '0',
    pass: sizeAfterClose === 0,
  },
  {
    name: '10,000 opossum 9 breakers (one call each): heap growth',
    value: opossumMb,
    unit: 'MB',
    peer: 'opossum@9',
    ratio: opossumMb / Math.max(0.01, keyedMb),
  },
];

const fmt = (v: number) => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(3));
console.log(`\nresilience (gc ${gc ? 'exposed' : 'NOT exposed: heap figures are rough'})`);
console.table(
  rows.map((r) => ({
    name: r.name,
    value: fmt(r.value),
    unit: r.unit,
    ratio: r.ratio === undefined ? '' : `${r.ratio.toFixed(1)}×`,
    target: r.target ?? '',
    pass: r.pass === undefined ? '' : r.pass ? 'yes' : 'NO',
  })),
);

writeResult({
  area: 'resilience',
  title: 'Resilience policies: success-path overhead and keyed breakers',
  setup:
    'Each candidate wraps `async () => 1`; 7 interleaved rounds of 50,000 sequential awaited calls, median; overhead = candidate − bare. Keyed: 10,000 breakers (failure-rate window + consecutive), one successful call each.',
  command: 'npx tsx --expose-gc bench/resilience/main.ts',
  rows,
});
