import { createTestClock } from '@trellis/core/testing';
import { describe, expect, it } from 'vitest';
import { Sleeper } from './Sleeper.js';
import { TokenBucket } from './TokenBucket.js';

describe('TokenBucket', () => {
  it('lets a burst through, then one per interval', async () => {
    const clock = createTestClock();
    const sleeper = new Sleeper(clock);
    const bucket = new TokenBucket(clock, 1_000, 2);
    const times: number[] = [];
    const loop = (async () => {
      for (let i = 0; i < 5; i++) {
        await bucket.take(sleeper);
        times.push(clock.now());
      }
    })();
    await clock.advance(3_000);
    await loop;
    expect(times).toEqual([0, 0, 1_000, 2_000, 3_000]);
    sleeper.close();
    expect(clock.pendingTimers).toBe(0);
  });
});
