import {
  AbortedError,
  ConfigError,
  ConnectError,
  type Instance,
  ShedError,
  TimeoutError,
} from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import { describe, expect, it } from 'vitest';
import type { EjectionEvent, TrellisBalancer } from './BalancerCore.js';
import { consistentHash } from './consistentHash.js';
import { leastRequest } from './leastRequest.js';
import { peakEwma } from './peakEwma.js';
import { random } from './random.js';
import { roundRobin } from './roundRobin.js';

const make = (n: number, prefix = 'h'): Instance[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}:80`, url: `http://${prefix}${i}:80` }));

type Factory = (opts: Parameters<typeof roundRobin>[0]) => TrellisBalancer;
const factories: [string, Factory][] = [
  ['roundRobin', roundRobin],
  ['random', random],
  ['leastRequest', leastRequest],
  ['peakEwma', peakEwma],
  ['consistentHash', consistentHash],
];

describe.each(factories)('%s: shared balancer behaviour', (_name, factory) => {
  it('returns undefined for an empty list', () => {
    expect(factory({}).pick([])).toBeUndefined();
  });

  it('honours exclude, and ignores it when nothing else is left', () => {
    const b = factory({});
    const list = make(3);
    const exclude = new Set(['h0:80', 'h1:80']);
    for (let i = 0; i < 20; i++) {
      const p = b.pick(list, { exclude, key: `k${i}` })!;
      expect(p.instance.id).toBe('h2:80');
      p.done({ ok: true, durationMs: 1 });
    }
    const all = new Set(list.map((i) => i.id));
    const p = b.pick(list, { exclude: all })!;
    expect(all.has(p.instance.id)).toBe(true);
  });

  it('ejects after 5 consecutive failures, for base x times ejected, and brings it back', async () => {
    const clock = createTestClock();
    const events: EjectionEvent[] = [];
    const b = factory({ clock, outlier: { maxEjectionPercent: 100 } });
    b.onEject((e) => events.push(e));
    const list = make(2);
    const exclude = new Set(['h1:80']);
    for (let i = 0; i < 5; i++) b.pick(list, { exclude })!.done({ ok: false, durationMs: 1 });
    expect(b.isEjected('h0:80')).toBe(true);
    expect(events).toMatchObject([
      { reason: 'consecutive-failures', durationMs: 30_000, timesEjected: 1 },
    ]);
    for (let i = 0; i < 20; i++) {
      const p = b.pick(list, { key: `k${i}` })!;
      expect(p.instance.id).toBe('h1:80');
      p.done({ ok: true, durationMs: 1 });
    }
    await clock.advance(30_000);
    expect(b.isEjected('h0:80')).toBe(false);
    // Fails again soon: the second ejection lasts twice as long.
    for (let i = 0; i < 5; i++) b.pick(list, { exclude })!.done({ ok: false, durationMs: 1 });
    expect(events[1]).toMatchObject({ durationMs: 60_000, timesEjected: 2 });
  });

  it('never ejects more than maxEjectionPercent (but at least one)', () => {
    const clock = createTestClock();
    const b = factory({ clock });
    const list = make(5);
    for (const inst of list) {
      const others = new Set(list.filter((i) => i !== inst).map((i) => i.id));
      for (let i = 0; i < 5; i++)
        b.pick(list, { exclude: others })!.done({ ok: false, durationMs: 1 });
    }
    const ejected = list.filter((i) => b.isEjected(i.id));
    expect(ejected).toHaveLength(1);
  });

  it('panic-routes to ejected instances when every instance is ejected (default)', () => {
    const clock = createTestClock();
    const b = factory({ clock, outlier: { maxEjectionPercent: 100 } });
    const list = make(2);
    for (const inst of list) {
      const others = new Set(list.filter((i) => i !== inst).map((i) => i.id));
      for (let i = 0; i < 5; i++)
        b.pick(list, { exclude: others })!.done({ ok: false, durationMs: 1 });
    }
    expect(list.every((i) => b.isEjected(i.id))).toBe(true);
    const pick = b.pick(list);
    expect(pick).toBeDefined();
    expect(list.map((i) => i.id)).toContain(pick!.instance.id);
    pick!.done({ ok: true, durationMs: 1 });
    // The ejections still run their course.
    expect(list.every((i) => b.isEjected(i.id))).toBe(true);
  });

  it("returns undefined when every instance is ejected with whenAllEjected: 'none'", () => {
    const b = factory({ outlier: { maxEjectionPercent: 100 }, whenAllEjected: 'none' });
    const list = make(1);
    for (let i = 0; i < 5; i++) b.pick(list)!.done({ ok: false, durationMs: 1 });
    expect(b.pick(list)).toBeUndefined();
  });

  it('does not panic-route while a healthy instance is left', () => {
    const clock = createTestClock();
    const b = factory({ clock, outlier: { maxEjectionPercent: 100 } });
    const list = make(2);
    const onlyFirst = new Set([list[1]!.id]);
    for (let i = 0; i < 5; i++)
      b.pick(list, { exclude: onlyFirst })!.done({ ok: false, durationMs: 1 });
    expect(b.isEjected(list[0]!.id)).toBe(true);
    for (let i = 0; i < 20; i++) {
      const p = b.pick(list)!;
      expect(p.instance.id).toBe(list[1]!.id);
      p.done({ ok: true, durationMs: 1 });
    }
  });

  it('does not eject when outlier detection is off', () => {
    const b = factory({ outlier: false });
    const list = make(1);
    for (let i = 0; i < 50; i++) b.pick(list)!.done({ ok: false, durationMs: 1 });
    expect(b.isEjected('h0:80')).toBe(false);
    expect(b.pick(list)).toBeDefined();
  });

  it('tracks requests in flight per instance', () => {
    const b = factory({});
    const list = make(1);
    const p1 = b.pick(list)!;
    const p2 = b.pick(list)!;
    expect(b.inflight('h0:80')).toBe(2);
    p1.done({ ok: true, durationMs: 1 });
    p2.done({ ok: true, durationMs: 1 });
    expect(b.inflight('h0:80')).toBe(0);
  });

  it('keeps state bounded as instances come and go, and drains in-flight ones', async () => {
    const clock = createTestClock();
    const b = factory({ clock, retainMs: 1_000 });
    const held = b.pick(make(1, 'keep'))!;
    for (let gen = 0; gen < 200; gen++) {
      const list = make(5, `g${gen}-`);
      b.pick(list)!.done({ ok: true, durationMs: 1 });
      await clock.advance(100);
    }
    expect(b.trackedIds).toBeLessThan(5 * 15);
    // The instance with a request in flight is still tracked (drained, not cut).
    expect(b.inflight('keep0:80')).toBe(1);
    held.done({ ok: true, durationMs: 1 });
    expect(b.inflight('keep0:80')).toBe(0);
  });

  it('rejects bad options with a ConfigError naming the field', () => {
    expect(() => factory({ outlier: { consecutiveFailures: -1 } })).toThrow(ConfigError);
    expect(() => factory({ outlier: { consecutiveFailures: -1 } })).toThrow(
      /outlier\.consecutiveFailures/,
    );
  });
});

describe('failure-rate ejection (A50 failure percentage)', () => {
  it('ejects an instance failing >= 85% over an interval once 5 instances have volume', async () => {
    const clock = createTestClock();
    const b = roundRobin({ clock, outlier: { consecutiveFailures: 0 } });
    const events: EjectionEvent[] = [];
    b.onEject((e) => events.push(e));
    const list = make(5);
    let h0 = 0;
    for (let i = 0; i < 500; i++) {
      const p = b.pick(list)!;
      // h0 fails 9 requests in 10 (the consecutive-failures rule is off here).
      const bad = p.instance.id === 'h0:80' && h0++ % 10 !== 0;
      p.done({ ok: !bad, durationMs: 1 });
    }
    expect(events).toHaveLength(0);
    await clock.advance(10_000);
    // The interval is checked on a failure, or on every 64th success.
    for (let i = 0; i < 64; i++)
      b.pick(list, { exclude: new Set(['h0:80']) })!.done({ ok: true, durationMs: 1 });
    expect(events).toMatchObject([{ reason: 'failure-rate', instance: { id: 'h0:80' } }]);
  });

  it('does not run with fewer instances than failureMinInstances', async () => {
    const clock = createTestClock();
    const b = roundRobin({ clock, outlier: { consecutiveFailures: 0 } });
    const list = make(2);
    for (let i = 0; i < 400; i++) {
      const p = b.pick(list)!;
      p.done({ ok: p.instance.id !== 'h0:80', durationMs: 1 });
    }
    await clock.advance(10_000);
    for (let i = 0; i < 64; i++) b.pick(list)!.done({ ok: true, durationMs: 1 });
    expect(b.isEjected('h0:80')).toBe(false);
  });
});

describe('outlier detection counts only upstream faults (issue 18 item 4)', () => {
  const notUpstream = () => [
    { ok: false, durationMs: 10, fault: 'caller' as const },
    { ok: false, durationMs: 10, fault: 'overload' as const },
    { ok: false, durationMs: 10, error: new AbortedError('caller aborted after 10 ms') },
    {
      ok: false,
      durationMs: 0,
      error: Object.assign(new TypeError('invalid header'), { code: 'UND_ERR_INVALID_ARG' }),
    },
    {
      ok: false,
      durationMs: 5,
      error: new TimeoutError('caller deadline', { timeoutMs: 1, deadline: true }),
    },
    {
      ok: false,
      durationMs: 5,
      error: new ShedError('shed', { reason: 'limit', retryAfterMs: 1_000 }),
    },
  ];

  for (const make_ of [roundRobin, leastRequest, peakEwma, random, consistentHash]) {
    it(`${make_.name}: the caller's faults and shed answers never eject a healthy instance`, () => {
      const clock = createTestClock();
      const b = make_({ clock, outlier: { consecutiveFailures: 2, maxEjectionPercent: 100 } });
      const list = make(1);
      for (let round = 0; round < 20; round++) {
        for (const outcome of notUpstream()) b.pick(list)!.done(outcome);
      }
      expect(b.isEjected('h0:80')).toBe(false);
      // An upstream fault still counts: a connect error, twice, ejects.
      for (let i = 0; i < 2; i++) {
        b.pick(list)!.done({
          ok: false,
          durationMs: 1,
          error: new ConnectError('refused', { target: 'h0' }),
        });
      }
      expect(b.isEjected('h0:80')).toBe(true);
    });
  }

  it('an outcome without fault or error stays an upstream failure (ok: false)', () => {
    const b = roundRobin({
      clock: createTestClock(),
      outlier: { consecutiveFailures: 2, maxEjectionPercent: 100 },
    });
    const list = make(1);
    for (let i = 0; i < 2; i++) b.pick(list)!.done({ ok: false, durationMs: 1 });
    expect(b.isEjected('h0:80')).toBe(true);
  });
});
