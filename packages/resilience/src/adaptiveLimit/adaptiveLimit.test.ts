import {
  AbortedError,
  type AdmissionPermit,
  type Clock,
  ConfigError,
  ConnectError,
  createStatusRegistry,
  HttpError,
  runWithDeadline,
  TimeoutError,
} from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import fc from 'fast-check';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { LimitExceededError } from '../errors.js';
import { instrument } from '../instrument.js';
import { adaptiveLimit, type LimitAlgorithmName } from './adaptiveLimit.js';

const algorithms: LimitAlgorithmName[] = ['gradient2', 'vegas', 'aimd'];

/** A synchronous virtual clock for discrete-event runs (only `now()` is read by the policy). */
function virtualClock(): Clock & { t: number } {
  return {
    t: 0,
    now() {
      return this.t;
    },
    setTimeout: () => ({}),
    clearTimeout: () => {},
  };
}

/**
 * A service with `slots` workers of `serviceMs` each and a FIFO queue in front (the benchmark's
 * downstream), offered `rate` calls per second through the limit, in virtual time.
 * Returns per-second completions and rejections.
 */
function simulate(
  algorithm: LimitAlgorithmName,
  phases: { seconds: number; rate: number }[],
  slots = 10,
  serviceMs = 20,
) {
  const clock = virtualClock();
  const limit = adaptiveLimit({
    algorithm,
    clock,
    vegas: algorithm === 'vegas' ? { random: () => 0.5 } : undefined,
  });
  const busyUntil: number[] = Array.from({ length: slots }, () => 0);
  const finishes: { at: number; permit: AdmissionPermit }[] = [];
  const second = (list: typeof perSecond, i: number) => {
    list[i] ??= { done: 0, rejected: 0, maxInFlightOverLimit: 0, limit: 0 };
    return list[i];
  };
  const perSecond: {
    done: number;
    rejected: number;
    maxInFlightOverLimit: number;
    limit: number;
  }[] = [];
  let t0 = 0;
  for (const phase of phases) {
    const gap = 1000 / phase.rate;
    for (let at = t0; at < t0 + phase.seconds * 1000; at += gap) {
      // complete everything due before this arrival, in time order
      finishes.sort((a, b) => a.at - b.at);
      while (finishes.length > 0 && (finishes[0] as { at: number }).at <= at) {
        const f = finishes.shift() as { at: number; permit: AdmissionPermit };
        clock.t = f.at;
        f.permit.release('success');
        const s = second(perSecond, Math.floor(f.at / 1000));
        s.done++;
      }
      clock.t = at;
      const s = second(perSecond, Math.floor(at / 1000));
      const permit = limit.tryAcquire();
      s.limit = limit.limit;
      if (permit === undefined) {
        s.rejected++;
        continue;
      }
      let slot = 0;
      for (let i = 1; i < slots; i++)
        if ((busyUntil[i] as number) < (busyUntil[slot] as number)) slot = i;
      const start = Math.max(at, busyUntil[slot] as number);
      busyUntil[slot] = start + serviceMs;
      finishes.push({ at: start + serviceMs, permit });
    }
    t0 += phase.seconds * 1000;
  }
  return { perSecond, limit };
}

describe('adaptiveLimit', () => {
  it('admits up to its limit, then rejects with LimitExceededError and a retry hint', async () => {
    const clock = createTestClock();
    const limit = adaptiveLimit({ algorithm: 'aimd', min: 2, max: 4, initial: 2, clock });
    const gates: (() => void)[] = [];
    const run = () => limit.execute(() => new Promise<void>((r) => gates.push(r)));
    const a = run();
    const b = run();
    const err = await run().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LimitExceededError);
    expect((err as LimitExceededError).code).toBe('TRELLIS_LIMIT_EXCEEDED');
    expect((err as LimitExceededError).limit).toBe(2);
    expect((err as LimitExceededError).retryAfterMs).toBeGreaterThanOrEqual(1);
    await clock.advance(30);
    for (const g of gates) g();
    await Promise.all([a, b]);
    expect(limit.inFlight).toBe(0);
    // two successes at full use: AIMD adds one each
    expect(limit.limit).toBe(4);
    expect(limit.retryAfterMs).toBe(30);
  });

  it('learns from upstream faults only, never from a caller abort, a deadline or a shed answer', () => {
    const clock = createTestClock();
    const limit = adaptiveLimit({ algorithm: 'aimd', min: 1, max: 100, initial: 50, clock });
    const changes: number[] = [];
    limit.onLimitChange(({ to }) => changes.push(to));
    const fail = (err: unknown) => limit.execute(() => Promise.reject(err)).catch(() => undefined);
    return (async () => {
      await fail(new AbortedError('caller went away'));
      await fail(new TimeoutError('caller deadline', { timeoutMs: 1, deadline: true }));
      await fail(
        new HttpError('shed', {
          status: 503,
          body: undefined,
          headers: { 'x-trellis-shed': 'limit' },
          retryAfterMs: undefined,
        }),
      );
      expect(changes).toEqual([]);
      await fail(new ConnectError('refused', { target: 'db' }));
      expect(changes).toEqual([45]);
    })();
  });

  it('queues up to `queue` calls FIFO, and a queued call leaves on abort or deadline', async () => {
    const clock = createTestClock();
    const limit = adaptiveLimit({ algorithm: 'aimd', min: 1, max: 1, queue: 2, clock });
    let release!: () => void;
    const first = limit.execute(() => new Promise<void>((r) => (release = r)));
    const order: string[] = [];
    const second = limit.execute(async () => order.push('second'));
    const ac = new AbortController();
    const third = limit.execute(async () => order.push('third'), { signal: ac.signal });
    await expect(limit.execute(async () => 'x')).rejects.toBeInstanceOf(LimitExceededError);
    ac.abort();
    await expect(third).rejects.toBeInstanceOf(AbortedError);
    const late = runWithDeadline(50, () => limit.execute(async () => order.push('late')), clock);
    const lateRejected = expect(late).rejects.toBeInstanceOf(TimeoutError);
    await clock.advance(60);
    await lateRejected;
    release();
    await first;
    await second;
    expect(order).toEqual(['second']);
    expect(limit.queued).toBe(0);
  });

  it('keeps the guaranteed share of an active partition free for it', () => {
    const clock = createTestClock();
    const limit = adaptiveLimit({
      algorithm: 'aimd',
      min: 10,
      max: 10,
      partitions: { critical: 0.6, batch: 0.4 },
      clock,
    });
    const c = limit.tryAcquire('critical');
    expect(c).toBeDefined();
    const batch: AdmissionPermit[] = [];
    for (let i = 0; i < 10; i++) {
      const p = limit.tryAcquire('batch');
      if (p) batch.push(p);
    }
    // critical is active: its 6 guaranteed slots (1 used) stay free, batch gets 4
    expect(batch).toHaveLength(4);
    for (let i = 0; i < 5; i++) expect(limit.tryAcquire('critical')).toBeDefined();
    expect(limit.tryAcquire('critical')).toBeUndefined();
    expect(limit.inFlightOf('critical')).toBe(6);
    expect(limit.inFlight).toBe(10);
  });

  it('lets a partition borrow the share of one idle for over a second', async () => {
    const clock = createTestClock();
    const limit = adaptiveLimit({
      algorithm: 'aimd',
      min: 10,
      max: 10,
      partitions: { critical: 0.6, batch: 0.4 },
      clock,
    });
    limit.tryAcquire('critical')?.release('ignored');
    await clock.advance(1_001);
    let n = 0;
    while (limit.tryAcquire('batch')) n++;
    expect(n).toBe(10);
  });

  it('refuses bad options with a ConfigError naming the field', () => {
    const bad: [unknown, string][] = [
      [{ algorithm: 'cubic' }, 'algorithm'],
      [{ min: 0 }, 'min'],
      [{ min: 50, max: 10 }, 'min'],
      [{ initial: 500 }, 'initial'],
      [{ queue: -1 }, 'queue'],
      [{ partitions: { a: 0.7, b: 0.6 } }, 'partitions'],
      [{ partitions: { a: 2 } }, 'partitions.a'],
      [{ gradient2: { rttTolerance: 0.5 } }, 'gradient2.rttTolerance'],
      [{ algorithm: 'vegas', gradient2: {} }, 'gradient2'],
      [{ algorithm: 'aimd', aimd: { backoffRatio: 1 } }, 'aimd.backoffRatio'],
      [{ clock: {} }, 'clock'],
      [{ limit: 3 }, 'limit'],
    ];
    for (const [options, field] of bad) {
      const err = (() => {
        try {
          adaptiveLimit(options as never);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, JSON.stringify(options)).toBeInstanceOf(ConfigError);
      expect((err as Error).message, JSON.stringify(options)).toContain(field);
    }
  });

  it('registers with a status registry as kind adaptiveLimit (in flight against the limit) until close()', async () => {
    const status = createStatusRegistry();
    const limit = adaptiveLimit({ algorithm: 'aimd', initial: 2, queue: 1, name: 'api', status });
    const entry = () => status.snapshot().components.find((c) => c.name === 'api');
    expect(entry()).toMatchObject({
      kind: 'adaptiveLimit',
      inflight: 0,
      limit: 2,
      queued: 0,
      maxQueue: 1,
    });
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    const calls = [limit.execute(() => held), limit.execute(() => held), limit.execute(() => held)];
    expect(entry()).toMatchObject({ inflight: 2, limit: 2, queued: 1, algorithm: 'aimd' });
    release();
    await Promise.all(calls);
    expect(entry()).toMatchObject({ inflight: 0, queued: 0 });
    limit.close();
    expect(status.names()).not.toContain('api');
    expect(() => adaptiveLimit({ status: {} as never })).toThrow(/status/);
    status.close();
  });

  it('publishes its limit, in-flight, rejections and RTT as Prometheus metrics', async () => {
    const registry = new Registry();
    const clock = createTestClock();
    const limit = instrument(adaptiveLimit({ algorithm: 'aimd', min: 1, max: 1, clock }), {
      registry,
      name: 'db',
    });
    const p = limit.tryAcquire();
    expect(limit.tryAcquire()).toBeUndefined();
    await clock.advance(25);
    p?.release('success');
    const text = await registry.metrics();
    expect(text).toContain('trellis_limit_current{name="db"} 1');
    expect(text).toContain('trellis_limit_in_flight{name="db"} 0');
    expect(text).toContain('trellis_limit_rejected_total{name="db"} 1');
    expect(text).toContain('trellis_limit_rtt_seconds{name="db"} 0.025');
  });

  it('property: stays within min..max and never admits past its current limit', async () => {
    for (const algorithm of algorithms) {
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 30 }),
          fc.integer({ min: 0, max: 60 }),
          fc.boolean(),
          fc.array(
            fc.oneof(
              fc.record({
                op: fc.constant('acquire' as const),
                partition: fc.constantFrom(undefined, 'a', 'b'),
              }),
              fc.record({
                op: fc.constant('release' as const),
                outcome: fc.constantFrom('success', 'dropped', 'ignored'),
              }),
              fc.record({
                op: fc.constant('advance' as const),
                ms: fc.integer({ min: 1, max: 2_000 }),
              }),
            ),
            { maxLength: 200 },
          ),
          async (min, span, partitioned, ops) => {
            const clock = createTestClock();
            const max = min + span;
            const limit = adaptiveLimit({
              algorithm,
              min,
              max,
              initial: min,
              ...(partitioned && { partitions: { a: 0.5, b: 0.25 } }),
              clock,
              ...(algorithm === 'vegas' && { vegas: { random: () => 0.3 } }),
            });
            const held: AdmissionPermit[] = [];
            for (const o of ops) {
              if (o.op === 'acquire') {
                const before = limit.inFlight;
                const p = limit.tryAcquire(o.partition);
                if (p) {
                  held.push(p);
                  expect(limit.inFlight).toBeLessThanOrEqual(limit.limit);
                } else expect(limit.inFlight).toBe(before);
              } else if (o.op === 'release') {
                held.shift()?.release(o.outcome as 'success');
              } else await clock.advance(o.ms);
              expect(limit.limit).toBeGreaterThanOrEqual(min);
              expect(limit.limit).toBeLessThanOrEqual(max);
              expect(Number.isInteger(limit.limit)).toBe(true);
            }
          },
        ),
        { seed: 22, numRuns: 150 },
      );
    }
  });

  it.each(algorithms)(
    '%s: under 4x overload serves about the capacity, and recovers when it ends',
    (algorithm) => {
      // 10 slots x 20 ms = 500/s. 2 s at 0.5x, 4 s at 4x, 4 s at 0.5x.
      const { perSecond } = simulate(algorithm, [
        { seconds: 2, rate: 250 },
        { seconds: 4, rate: 2000 },
        { seconds: 4, rate: 250 },
      ]);
      const overload = perSecond.slice(3, 6);
      for (const s of overload) expect(s.done).toBeGreaterThanOrEqual(450);
      // After the overload ends (t = 6 s) it admits everything again within 2 s.
      for (const s of perSecond.slice(8, 10)) {
        expect(s.rejected).toBe(0);
        expect(s.done).toBeGreaterThanOrEqual(240);
      }
    },
  );
});
