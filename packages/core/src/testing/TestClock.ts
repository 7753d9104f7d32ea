import { setImmediate as realSetImmediate } from 'node:timers';
import type { Clock, ClockTimer } from '../Clock.js';
import { clampDelay } from '../time/duration.js';

interface Scheduled extends ClockTimer {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

/** A manual clock for tests: time moves only when the test says so. */
export interface TestClock extends Clock {
  /**
   * Moves time forward by `ms`, firing due timers in order. Between timers (and at the end) it
   * lets pending promise callbacks and I/O callbacks run, so code awaiting a timer has resumed
   * by the time `advance` resolves.
   */
  advance(ms: number): Promise<void>;
  /** Lets pending promise callbacks run without moving time. */
  flush(): Promise<void>;
  /** Timers scheduled and not yet fired or cleared: a leak check after `close()`. */
  readonly pendingTimers: number;
}

const tick = () => new Promise<void>((resolve) => realSetImmediate(resolve));

/**
 * Creates a {@link TestClock} starting at `start` ms.
 *
 * @example
 * ```ts
 * const clock = createTestClock();
 * const breaker = circuitBreaker({ clock, halfOpenAfterMs: 5_000 });
 * await clock.advance(5_000);
 * ```
 */
export function createTestClock(start = 0): TestClock {
  let now = start;
  let seq = 0;
  const timers: Scheduled[] = [];

  const nextDue = (limit: number): Scheduled | undefined => {
    let best: Scheduled | undefined;
    for (const t of timers) {
      if (t.at > limit) continue;
      if (!best || t.at < best.at || (t.at === best.at && t.seq < best.seq)) best = t;
    }
    return best;
  };

  return {
    now: () => now,
    setTimeout(callback, ms) {
      const timer: Scheduled = {
        at: now + clampDelay(ms),
        seq: seq++,
        callback,
        cancelled: false,
        unref: () => timer,
      };
      timers.push(timer);
      return timer;
    },
    clearTimeout(handle) {
      const i = timers.indexOf(handle as Scheduled);
      if (i !== -1) timers.splice(i, 1);
    },
    async advance(ms) {
      if (!(ms >= 0)) throw new RangeError(`advance(ms): ms must be >= 0, got ${ms}`);
      const target = now + ms;
      await tick();
      for (let t = nextDue(target); t; t = nextDue(target)) {
        timers.splice(timers.indexOf(t), 1);
        now = Math.max(now, t.at);
        t.callback();
        await tick();
      }
      now = target;
      await tick();
    },
    flush: tick,
    get pendingTimers() {
      return timers.length;
    },
  };
}
