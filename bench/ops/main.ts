/**
 * bench/ops: the admin API and status page under a large status snapshot: 1 000 instances (10
 * services x 100, through real balancers with picks recorded) and 200 circuit breakers.
 *
 *   - `/admin/status` answer time: 200 sequential GETs over keep-alive after 20 warm-up ones;
 *     median and p95 from request start to the last body byte. Target 20 ms.
 *   - Page render time in headless Chromium (Debian chromium via playwright-core): the time the
 *     page's render() takes for one snapshot (median of 20 snapshots, read from the
 *     `data-render-ms` attribute the page sets), and the time from navigation to the first
 *     rendered snapshot. Target 100 ms.
 *
 *   - Per-call cost of registration: a breaker's execute() and a balancer's pick()+done() with
 *     and without a status registry (with an event stream's listener attached), interleaved in
 *     10 rounds of 200 000 calls, alternating which goes first; median ns per call. Expect no difference beyond noise.
 *
 * Figures are indicative: the machine's CPUs are shared with other work, and the run is short.
 *
 *   npx tsx --tsconfig tsconfig.paths.json bench/ops/main.ts
 *   BENCH_OPS_SCREENSHOT=/tmp/big.png ...   # also saves a screenshot of the page
 */
import { Agent, request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { createAdminServer, createStatusRegistry } from '@trellis/core';
import { peakEwma } from '@trellis/discovery';
import { circuitBreaker } from '@trellis/resilience';
import { chromium } from 'playwright-core';

const SERVICES = 10;
const PER_SERVICE = 100;
const BREAKERS = 200;

const status = createStatusRegistry({ service: 'bench' });
const closers: (() => void)[] = [];
for (let s = 0; s < SERVICES; s++) {
  const balancer = peakEwma({ name: `service-${s}`, status });
  closers.push(() => balancer.close());
  const instances = Array.from({ length: PER_SERVICE }, (_, i) => ({
    id: `10.${s}.${i >> 8}.${i & 255}:8080`,
    url: `http://10.${s}.${i >> 8}.${i & 255}:8080`,
  }));
  for (let r = 0; r < PER_SERVICE * 4; r++) {
    const pick = balancer.pick(instances);
    pick?.done({ ok: r % 17 !== 0, durationMs: 2 + (r % 40) });
  }
  for (let i = 0; i < 3; i++) balancer.eject(instances[i * 7]?.id ?? '');
}
for (let b = 0; b < BREAKERS; b++) {
  const breaker = circuitBreaker({ name: `breaker-${b}`, status });
  if (b % 9 === 0) breaker.isolate();
  closers.push(() => breaker.close());
}

const admin = createAdminServer({ status, snapshotIntervalMs: 250 });
const { url } = await admin.listen();
const agent = new Agent({ keepAlive: true, maxSockets: 1 });

function getStatus(): Promise<{ ms: number; bytes: number }> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    request(`${url}status`, { agent }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => {
        bytes += c.length;
      });
      res.on('end', () => resolve({ ms: performance.now() - start, bytes }));
    })
      .on('error', reject)
      .end();
  });
}

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] as number;
};

for (let i = 0; i < 20; i++) await getStatus();
const times: number[] = [];
let bytes = 0;
for (let i = 0; i < 200; i++) {
  const r = await getStatus();
  times.push(r.ms);
  bytes = r.bytes;
}

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: [
    '--no-sandbox',
    '--headless',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
await page.goto(url);
await page.waitForSelector('html[data-first-render-ms]');
const first = Number(await page.getAttribute('html', 'data-first-render-ms'));
const tiles = await page.locator('.tile').count();
const rows = await page.locator('tr[data-breaker]').count();
if (process.env.BENCH_OPS_SCREENSHOT)
  await page.screenshot({ path: process.env.BENCH_OPS_SCREENSHOT });
interface PageDocument {
  documentElement: { getAttribute(name: string): string | null };
  getElementById(id: string): { textContent: string | null } | null;
}

const renders: number[] = [];
let last = '';
while (renders.length < 20) {
  await page.waitForFunction((prev) => {
    // Runs in the page (playwright serialises it); the bench is not compiled with the DOM lib.
    const doc = (globalThis as unknown as { document: PageDocument }).document;
    return (
      doc.documentElement.getAttribute('data-render-ms') !== prev ||
      doc.getElementById('updated')?.textContent !== prev
    );
  }, last);
  const v = (await page.getAttribute('html', 'data-render-ms')) ?? '';
  const stamp = (await page.textContent('#updated')) ?? '';
  if (stamp + v !== last) {
    renders.push(Number(v));
    last = stamp + v;
  }
  await page.waitForTimeout(260);
}
await browser.close();
await admin.close();
for (const c of closers) c();
status.close();
agent.destroy();

// Per-call cost with and without a registry.
async function perCall(): Promise<Record<string, number>> {
  const reg = createStatusRegistry();
  reg.onEvent(() => {}); // as if a stream listened
  const plainBreaker = circuitBreaker();
  const regBreaker = circuitBreaker({ name: 'cost', status: reg });
  const plainLb = peakEwma();
  const regLb = peakEwma({ name: 'cost', status: reg });
  const list = Array.from({ length: 10 }, (_, i) => ({ id: `i${i}`, url: `http://i${i}` }));
  const fn = () => 1;
  const N = 200_000;
  const runs: Record<string, number[]> = {
    'breaker plain': [],
    'breaker registered': [],
    'balancer plain': [],
    'balancer registered': [],
  };
  const timeBreaker = async (b: typeof plainBreaker) => {
    const t = performance.now();
    for (let i = 0; i < N; i++) await b.execute(fn);
    return ((performance.now() - t) * 1e6) / N;
  };
  const timeLb = (lb: typeof plainLb) => {
    const t = performance.now();
    for (let i = 0; i < N; i++) lb.pick(list)?.done({ ok: true, durationMs: 3 });
    return ((performance.now() - t) * 1e6) / N;
  };
  for (let round = 0; round < 10; round++) {
    // Alternate which goes first, so warm-up and GC drift do not favour one side.
    const order = round % 2 === 0 ? [false, true] : [true, false];
    for (const registered of order) {
      const b = registered ? regBreaker : plainBreaker;
      runs[registered ? 'breaker registered' : 'breaker plain']?.push(await timeBreaker(b));
    }
    for (const registered of order) {
      const lb = registered ? regLb : plainLb;
      runs[registered ? 'balancer registered' : 'balancer plain']?.push(timeLb(lb));
    }
  }
  regBreaker.close();
  regLb.close();
  reg.close();
  return Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, quantile(v.slice(2), 0.5)]));
}
const cost = await perCall();

const f = (n: number) => n.toFixed(1);
console.log(`bench/ops (indicative: shared CPU), Node ${process.version}`);
console.log(
  `snapshot: ${SERVICES * PER_SERVICE} instances in ${SERVICES} services, ${BREAKERS} breakers, ${(bytes / 1024).toFixed(0)} KiB of JSON`,
);
console.log(
  `GET /admin/status   median ${f(quantile(times, 0.5))} ms  p95 ${f(quantile(times, 0.95))} ms  (target 20 ms)`,
);
console.log(
  `page render()       median ${f(quantile(renders, 0.5))} ms  max ${f(Math.max(...renders))} ms  (target 100 ms; ${tiles} tiles, ${rows} breaker rows)`,
);
console.log(`navigation to first rendered snapshot ${f(first)} ms`);
for (const [k, v] of Object.entries(cost))
  console.log(`per call: ${k.padEnd(20)} ${f(v)} ns (median of rounds 3-10)`);
