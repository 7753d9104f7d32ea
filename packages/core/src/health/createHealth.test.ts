import { describe, expect, it, vi } from 'vitest';
import { ConfigError } from '../errors.js';
import type { Logger } from '../Logger.js';
import { createTestClock } from '../testing/TestClock.js';
import { createHealth, type HealthState } from './createHealth.js';

const quiet = { signals: false as const };

function recordingLogger() {
  const warnings: string[] = [];
  const logger: Logger = {
    debug: () => {},
    info: () => {},
    error: () => {},
    warn: (a: object | string, b?: string) => {
      warnings.push(typeof a === 'string' ? a : (b ?? ''));
    },
  };
  return { logger, warnings };
}

describe('createHealth probes', () => {
  it('passes with no checks, in the IETF shape', async () => {
    const health = createHealth({ ...quiet, serviceId: 'shop', version: '1' });
    const r = await health.report();
    expect(r).toEqual({ status: 'pass', httpStatus: 200, body: expect.any(Object) });
    expect(r.body).toMatchObject({ status: 'pass', serviceId: 'shop', version: '1' });
    expect((await health.ready()).httpStatus).toBe(200);
    expect((await health.live()).httpStatus).toBe(200);
    health.close();
  });

  it('critical failures fail readiness (503), non-critical ones warn (200)', async () => {
    const health = createHealth({
      ...quiet,
      checks: {
        db: { check: () => false },
        cache: { check: () => Promise.reject(new Error('cache down')), critical: false },
      },
    });
    const r = await health.ready();
    expect(r.status).toBe('fail');
    expect(r.httpStatus).toBe(503);
    expect(r.body.checks?.['db:responseTime']?.[0]).toMatchObject({ status: 'fail' });
    expect(r.body.checks?.['cache:responseTime']?.[0]).toMatchObject({
      status: 'fail',
      output: 'cache down',
    });
    health.close();

    const warnOnly = createHealth({
      ...quiet,
      checks: { cache: { check: () => false, critical: false } },
    });
    const w = await warnOnly.ready();
    expect([w.status, w.httpStatus]).toEqual(['warn', 200]);
    warnOnly.close();
  });

  it('reports custom observed values and measurements', async () => {
    const health = createHealth({
      ...quiet,
      checks: {
        pool: {
          measurement: 'connections',
          check: () => ({ status: 'warn', observedValue: 95, observedUnit: 'percent' }),
          componentType: 'datastore',
        },
      },
    });
    const r = await health.report();
    expect(r.status).toBe('warn');
    expect(r.body.checks?.['pool:connections']?.[0]).toMatchObject({
      status: 'warn',
      observedValue: 95,
      observedUnit: 'percent',
      componentType: 'datastore',
      time: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
    });
    health.close();
  });

  it('times a slow check out and aborts its signal', async () => {
    const clock = createTestClock();
    let signal: AbortSignal | undefined;
    const health = createHealth({
      ...quiet,
      clock,
      checks: {
        slow: {
          timeoutMs: 100,
          check: (ctx) => {
            signal = ctx.signal;
            return new Promise(() => {});
          },
        },
      },
    });
    const pending = health.ready();
    await clock.advance(100);
    const r = await pending;
    expect(r.httpStatus).toBe(503);
    expect(r.body.checks?.['slow:responseTime']?.[0]?.output).toBe('timed out after 100 ms');
    expect(signal?.aborted).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    health.close();
  });

  it('caches results for cacheMs and shares concurrent runs', async () => {
    const clock = createTestClock();
    const check = vi.fn(() => true);
    const health = createHealth({ ...quiet, clock, checks: { db: { check, cacheMs: 1000 } } });
    await Promise.all([health.ready(), health.ready()]);
    await health.ready();
    expect(check).toHaveBeenCalledTimes(1);
    await clock.advance(1000);
    await health.ready();
    expect(check).toHaveBeenCalledTimes(2);
    health.close();
  });

  it('liveness runs only liveness checks, and warns about external-looking ones', async () => {
    const { logger, warnings } = recordingLogger();
    const db = vi.fn(() => false);
    const health = createHealth({
      ...quiet,
      logger,
      checks: {
        database: { check: () => true, liveness: true },
        db: { check: db },
      },
    });
    expect(warnings.join()).toMatch(/"database" is on liveness: it looks like an external/);
    expect((await health.live()).status).toBe('pass');
    expect(db).not.toHaveBeenCalled();
    health.close();
  });

  it('is not ready until startup checks pass once, then never runs them again', async () => {
    let warmed = false;
    const warm = vi.fn(() => warmed);
    const states: HealthState[] = [];
    const health = createHealth({ ...quiet, checks: { warm: { check: warm, startup: true } } });
    health.onStateChange((c) => states.push(c.to));
    expect(health.state).toBe('starting');
    const r = await health.ready();
    expect([r.httpStatus, r.body.output]).toEqual([503, 'starting']);
    expect((await health.live()).httpStatus).toBe(200);
    warmed = true;
    expect((await health.ready()).httpStatus).toBe(200);
    expect(health.state).toBe('ready');
    await health.ready();
    expect(warm).toHaveBeenCalledTimes(2);
    expect(states).toEqual(['ready']);
    health.close();
  });

  it('rejects bad options naming the field', () => {
    expect(() => createHealth({ drainDelayMs: -1 })).toThrow(ConfigError);
    expect(() => createHealth({ drainDelayMs: -1 })).toThrow(/drainDelayMs/);
    expect(() =>
      // @ts-expect-error check must be a function
      createHealth({ signals: false, checks: { db: { check: 1 } } }),
    ).toThrow(/checks\.db\.check/);
  });
});

describe('createHealth shutdown (no server)', () => {
  it('fails readiness at once, waits the drain delay, runs hooks in order', async () => {
    const clock = createTestClock();
    const order: string[] = [];
    const health = createHealth({ ...quiet, clock, drainDelayMs: 5000 });
    health.addDeregistration(() => {
      order.push('deregister');
    });
    health.addCleanup(() => {
      order.push('cleanup 1');
    });
    const off = health.addCleanup(() => {
      order.push('never');
    });
    off();
    health.addCleanup(async () => {
      order.push('cleanup 2');
    });
    health.addFlush(() => {
      order.push('flush');
    });
    const states: HealthState[] = [];
    health.onStateChange((c) => states.push(c.to));

    const done = health.shutdown();
    expect(health.shutdown()).toBe(done);
    expect(health.state).toBe('draining');
    expect((await health.ready()).httpStatus).toBe(503);
    expect((await health.live()).httpStatus).toBe(200);
    await clock.advance(4999);
    expect(order).toEqual([]);
    await clock.advance(1);
    await done;
    expect(order).toEqual(['deregister', 'cleanup 2', 'cleanup 1', 'flush']);
    expect(states).toEqual(['draining', 'stopping', 'stopped']);
    expect(clock.pendingTimers).toBe(0);
    health.close();
  });

  it('a failing or hanging hook does not stop the sequence', async () => {
    const clock = createTestClock();
    const ran: string[] = [];
    const health = createHealth({ ...quiet, clock, drainDelayMs: 0, hookTimeoutMs: 50 });
    health.addCleanup(() => {
      ran.push('last');
    });
    health.addCleanup(() => new Promise(() => {}));
    health.addCleanup(() => {
      throw new Error('boom');
    });
    const done = health.shutdown();
    await clock.advance(50);
    await done;
    expect(ran).toEqual(['last']);
    expect(health.state).toBe('stopped');
    health.close();
  });

  it('starts on a signal, resolves without exiting when exit is false, and close() removes handlers', async () => {
    const before = process.listenerCount('SIGTERM');
    const clock = createTestClock();
    const health = createHealth({ clock, drainDelayMs: 10, exit: false, signals: ['SIGTERM'] });
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    process.emit('SIGTERM', 'SIGTERM');
    expect(health.state).toBe('draining');
    await clock.advance(10);
    await health.shutdown();
    expect(health.state).toBe('stopped');
    health.close();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });

  it('close() during a shutdown cuts its waits short instead of leaving it hanging', async () => {
    const clock = createTestClock();
    const health = createHealth({ ...quiet, clock, drainDelayMs: 60_000 });
    const done = health.shutdown();
    health.close();
    await done;
    expect(health.state).toBe('stopped');
    expect(clock.pendingTimers).toBe(0);
  });
});
