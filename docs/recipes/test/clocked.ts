/**
 * Test support for recipes.test.ts: `@trellis/core` and `@trellis/resilience` with one shared
 * test clock injected into every factory that takes a `clock`, so a recipe's own code runs
 * unchanged (only its import specifiers are pointed here) on fake time.
 */
import * as core from '@trellis/core';
import { createTestClock } from '@trellis/core/testing';
import * as resilience from '@trellis/resilience';

export const clock = createTestClock(1_000_000);

export * from '@trellis/core';
export * from '@trellis/resilience';

export const createClient: typeof core.createClient = ((options: object) =>
  core.createClient({ clock, ...options } as never)) as never;
export const retry: typeof resilience.retry = (options) => resilience.retry({ clock, ...options });
export const circuitBreaker: typeof resilience.circuitBreaker = (options) =>
  resilience.circuitBreaker({ clock, ...options });
export const timeout: typeof resilience.timeout = (options) =>
  resilience.timeout(
    typeof options === 'object' && options !== null
      ? { clock, ...options }
      : { ms: options, clock },
  );
export const createHealth: typeof core.createHealth = ((options: object) =>
  core.createHealth({ clock, ...options } as never)) as never;
