/**
 * Child process for bench/discovery/main.ts: measures one balancer (argv[2]) in a process of its own,
 * so its call sites see only that balancer (as an application's do), interleaved with a bare
 * baseline in the same process. Prints one JSON line: { bare, resolve, alone } in ns per call.
 */
import {
  consistentHash,
  leastRequest,
  peakEwma,
  random,
  roundRobin,
  staticDiscovery,
  type TrellisBalancer,
} from '@trellis/discovery';

const name = process.argv[2]!;
const factories: Record<string, () => TrellisBalancer> = {
  roundRobin: () => roundRobin(),
  random: () => random(),
  leastRequest: () => leastRequest(),
  peakEwma: () => peakEwma(),
  consistentHash: () => consistentHash(),
};
const b = factories[name]!();
const keyed = name === 'consistentHash';
const urls = Array.from({ length: 10 }, (_, i) => `http://10.0.0.${i + 1}:80`);
const discovery = staticDiscovery({ services: { svc: urls } });
const outcome = { ok: true, durationMs: 5 };
const iterations = 200_000;
const rounds = 9;
const list = await discovery.resolve('svc');
const resolved = Promise.resolve(list);
const keys = Array.from({ length: 1024 }, (_, i) => ({ key: `user-${i}` }));
let cursor = 0;

async function bare() {
  for (let i = 0; i < iterations; i++) {
    const l = await resolved;
    if (l[cursor++ % l.length]!.id === '') throw new Error('unreachable');
  }
}
async function withResolve() {
  for (let i = 0; i < iterations; i++) {
    const l = await discovery.resolve('svc');
    const p = keyed ? b.pick(l, keys[i & 1023]) : b.pick(l);
    p!.done(outcome);
  }
}
function alone() {
  for (let i = 0; i < iterations; i++) {
    const p = keyed ? b.pick(list, keys[i & 1023]) : b.pick(list);
    p!.done(outcome);
  }
}

const samples: Record<'bare' | 'resolve' | 'alone', number[]> = {
  bare: [],
  resolve: [],
  alone: [],
};
const time = async (fn: () => Promise<void> | void) => {
  const t0 = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t0) / iterations;
};
for (let round = 0; round < rounds; round++) {
  const x = await time(bare);
  const y = await time(withResolve);
  const z = await time(alone);
  if (round === 0) continue; // warm-up
  samples.bare.push(x);
  samples.resolve.push(y);
  samples.alone.push(z);
}
const median = (xs: number[]) => [...xs].sort((p, q) => p - q)[Math.floor(xs.length / 2)]!;
await discovery.close();
process.stdout.write(
  `${JSON.stringify({ bare: median(samples.bare), resolve: median(samples.resolve), alone: median(samples.alone) })}\n`,
);
