import { describe, expect, it } from 'vitest';
import { createTestClock } from './TestClock.js';

describe('createTestClock', () => {
  it('fires timers in order as time advances and lets awaiting code resume', async () => {
    const clock = createTestClock(100);
    const log: string[] = [];
    clock.setTimeout(() => log.push(`b@${clock.now()}`), 20);
    clock.setTimeout(() => log.push(`a@${clock.now()}`), 10);
    const cleared = clock.setTimeout(() => log.push('never'), 15);
    clock.clearTimeout(cleared);
    const waited = new Promise<void>((resolve) => clock.setTimeout(resolve, 30)).then(() =>
      log.push('resumed'),
    );
    expect(clock.pendingTimers).toBe(3);
    await clock.advance(15);
    expect(log).toEqual(['a@110']);
    await clock.advance(100);
    await waited;
    expect(log).toEqual(['a@110', 'b@120', 'resumed']);
    expect(clock.now()).toBe(215);
    expect(clock.pendingTimers).toBe(0);
  });

  it('runs timers scheduled by timers within the same advance', async () => {
    const clock = createTestClock();
    let fired = 0;
    const again = () => {
      fired++;
      if (fired < 5) clock.setTimeout(again, 10);
    };
    clock.setTimeout(again, 10);
    await clock.advance(35);
    expect(fired).toBe(3);
    await clock.advance(100);
    expect(fired).toBe(5);
  });

  it('rejects negative advances', async () => {
    await expect(createTestClock().advance(-1)).rejects.toThrow(RangeError);
  });
});
