import { AbortedError, ConfigError, runWithDeadline, TimeoutError } from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { bulkhead } from './bulkhead.js';
import { BulkheadRejectedError } from './errors.js';

function gate() {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  return { promise, open };
}

describe('bulkhead', () => {
  it('runs up to limit, queues up to queue, rejects the rest', async () => {
    const policy = bulkhead({ limit: 2, queue: 1 });
    const rejects: number[] = [];
    policy.onReject(({ queued }) => rejects.push(queued));
    const g = gate();
    const calls = [1, 2, 3].map((i) => policy.execute(() => g.promise.then(() => i)));
    expect(policy.running).toBe(2);
    expect(policy.queued).toBe(1);
    const err = await policy.execute(async () => 4).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BulkheadRejectedError);
    expect(BulkheadRejectedError.status).toBe(503);
    expect(rejects).toEqual([1]);
    g.open();
    expect(await Promise.all(calls)).toEqual([1, 2, 3]);
    expect(policy.running).toBe(0);
    expect(policy.queued).toBe(0);
  });

  it('a queued call leaves the queue when its signal aborts', async () => {
    const policy = bulkhead({ limit: 1, queue: 5 });
    const g = gate();
    const first = policy.execute(() => g.promise);
    const controller = new AbortController();
    let ran = false;
    const queued = policy.execute(
      async () => {
        ran = true;
      },
      { signal: controller.signal },
    );
    expect(policy.queued).toBe(1);
    controller.abort();
    await expect(queued).rejects.toBeInstanceOf(AbortedError);
    expect(policy.queued).toBe(0);
    g.open();
    await first;
    expect(ran).toBe(false);
    expect(policy.running).toBe(0);
  });

  it('a queued call leaves the queue when its deadline passes', async () => {
    const clock = createTestClock();
    const policy = bulkhead({ limit: 1, queue: 5, clock });
    const g = gate();
    const first = policy.execute(() => g.promise);
    const queued = runWithDeadline(50, () => policy.execute(async () => 'late'), clock);
    const caught = queued.catch((e: unknown) => e);
    await clock.advance(50);
    expect(await caught).toBeInstanceOf(TimeoutError);
    expect(policy.queued).toBe(0);
    g.open();
    await first;
    expect(clock.pendingTimers).toBe(0);
  });

  it('releases the slot when fn throws synchronously or rejects with a non-Error', async () => {
    const policy = bulkhead({ limit: 1 });
    await expect(
      policy.execute(() => {
        throw new Error('sync');
      }),
    ).rejects.toThrow('sync');
    await expect(policy.execute(() => Promise.reject('nope'))).rejects.toBe('nope');
    expect(policy.running).toBe(0);
    await expect(policy.execute(async () => 'ok')).resolves.toBe('ok');
  });

  it('rejects bad options naming the field', () => {
    expect(() => bulkhead({ limit: 0 })).toThrow(ConfigError);
    expect(() => bulkhead({ limit: 1.5 })).toThrow(/limit/);
    expect(() => bulkhead({ limit: 1, queue: -1 })).toThrow(/queue/);
  });

  it('property: never more than limit running, never more than queue waiting', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 4 }),
        fc.array(fc.constantFrom('start', 'finish', 'fail'), { maxLength: 60 }),
        async (limit, queue, ops) => {
          const policy = bulkhead({ limit, queue });
          let running = 0;
          let maxRunning = 0;
          const open: ((ok: boolean) => void)[] = [];
          for (const op of ops) {
            if (op === 'start') {
              policy
                .execute(
                  () =>
                    new Promise<void>((resolve, reject) => {
                      running++;
                      maxRunning = Math.max(maxRunning, running);
                      open.push((ok) => {
                        running--;
                        if (ok) resolve();
                        else reject(new Error('x'));
                      });
                    }),
                )
                .catch(() => {});
            } else {
              open.shift()?.(op === 'finish');
            }
            await Promise.resolve();
            await new Promise((r) => setImmediate(r));
            expect(policy.running).toBeLessThanOrEqual(limit);
            expect(policy.queued).toBeLessThanOrEqual(queue);
            expect(policy.running).toBe(running);
            expect(maxRunning).toBeLessThanOrEqual(limit);
          }
          while (open.length > 0) {
            open.shift()?.(true);
            await new Promise((r) => setImmediate(r));
          }
          expect(policy.running).toBe(0);
          expect(policy.queued).toBe(0);
        },
      ),
      { numRuns: 50 },
    );
  });
});
