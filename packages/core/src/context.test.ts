import { describe, expect, it } from 'vitest';
import {
  getRequestContext,
  parseDeadlineHeader,
  remainingMs,
  runWithContext,
  runWithDeadline,
} from './context.js';
import { createTestClock } from './testing/TestClock.js';

describe('request context', () => {
  it('is undefined outside a context and merged inside nested ones', async () => {
    expect(getRequestContext()).toBeUndefined();
    await runWithContext({ requestId: 'r1' }, async () => {
      await Promise.resolve();
      runWithContext({ traceId: 't1' }, () => {
        expect(getRequestContext()).toMatchObject({ requestId: 'r1', traceId: 't1' });
      });
      expect(getRequestContext()?.traceId).toBeUndefined();
    });
  });

  it('deadlines only shrink and are measured on the given clock', async () => {
    const clock = createTestClock(1_000);
    expect(remainingMs(clock)).toBeUndefined();
    await runWithDeadline(
      500,
      async () => {
        expect(remainingMs()).toBe(500);
        runWithDeadline(
          10_000,
          () => {
            expect(remainingMs()).toBe(500);
          },
          clock,
        );
        runWithDeadline(100, () => expect(remainingMs()).toBe(100), clock);
        await clock.advance(600);
        expect(remainingMs()).toBe(-100);
      },
      clock,
    );
  });

  it('parses the deadline header strictly', () => {
    expect(parseDeadlineHeader('250')).toBe(250);
    expect(parseDeadlineHeader(['30', '40'])).toBe(30);
    expect(parseDeadlineHeader(undefined)).toBeUndefined();
    expect(parseDeadlineHeader('-5')).toBeUndefined();
    expect(parseDeadlineHeader('1e3')).toBeUndefined();
    expect(parseDeadlineHeader('12345678901')).toBeUndefined();
  });
});
