import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { systemClock } from '../Clock.js';
import { parseOptions } from '../options.js';
import { createTestClock } from '../testing/index.js';
import { clampDelay, durationMs, isTimerSafe, MAX_DELAY_MS } from './duration.js';
import { sleep } from './sleep.js';

describe('clampDelay', () => {
  it('maps every number, NaN and infinities to a delay a timer honours', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double(),
          fc.integer(),
          fc.constantFrom(NaN, Infinity, -Infinity, 2 ** 31, 2 ** 53),
        ),
        (ms) => {
          const d = clampDelay(ms);
          expect(isTimerSafe(d)).toBe(true);
          if (ms > 0 && ms <= MAX_DELAY_MS) expect(d).toBe(ms);
          if (ms > MAX_DELAY_MS) expect(d).toBe(MAX_DELAY_MS);
          if (!(ms > 0)) expect(d).toBe(0);
        },
      ),
      { seed: 1805, numRuns: 2_000 },
    );
  });

  it('the system clock does not fire a delay over 2^31-1 ms at once (Node would, after 1 ms)', async () => {
    let fired = false;
    const timer = systemClock.setTimeout(() => {
      fired = true;
    }, 2 ** 31);
    await new Promise((r) => setTimeout(r, 20));
    systemClock.clearTimeout(timer);
    expect(fired).toBe(false);
  });

  it('the test clock clamps the same way', async () => {
    const clock = createTestClock();
    let fired = false;
    clock.setTimeout(() => {
      fired = true;
    }, 9_999_999_999_999);
    await clock.advance(MAX_DELAY_MS - 1);
    expect(fired).toBe(false);
    await clock.advance(1);
    expect(fired).toBe(true);
  });
});

describe('durationMs', () => {
  const schema = z.strictObject({ timeoutMs: durationMs({ positive: true }) });

  it('accepts every finite duration a timer can hold, and refuses everything else naming the field', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, 0, MAX_DELAY_MS, MAX_DELAY_MS + 1)),
        (ms) => {
          const ok = Number.isFinite(ms) && ms > 0 && ms <= MAX_DELAY_MS;
          if (ok) expect(parseOptions(schema, { timeoutMs: ms }, 'x').timeoutMs).toBe(ms);
          else expect(() => parseOptions(schema, { timeoutMs: ms }, 'x')).toThrow(/timeoutMs/);
        },
      ),
      { seed: 1806, numRuns: 2_000 },
    );
  });

  it('says a number of milliseconds is expected when given a string', () => {
    expect(() => parseOptions(schema, { timeoutMs: '300' }, 'timeout')).toThrow(
      /timeoutMs: expected a number of milliseconds, received the string "300"/,
    );
    expect(() => parseOptions(schema, { timeoutMs: 2 ** 31 }, 'timeout')).toThrow(
      /at most 2147483647 ms/,
    );
  });
});

describe('sleep', () => {
  it('waits on the clock and rejects with AbortedError when aborted', async () => {
    const clock = createTestClock();
    let done = false;
    const p = sleep(100, { clock }).then(() => {
      done = true;
    });
    await clock.advance(99);
    expect(done).toBe(false);
    await clock.advance(1);
    await p;
    expect(done).toBe(true);

    const ac = new AbortController();
    const q = sleep(1_000, { clock, signal: ac.signal });
    ac.abort(new Error('bye'));
    await expect(q).rejects.toMatchObject({ code: 'TRELLIS_ABORTED' });
    expect(clock.pendingTimers).toBe(0);
    await expect(sleep(1, { clock, signal: ac.signal })).rejects.toMatchObject({
      code: 'TRELLIS_ABORTED',
    });
  });
});
