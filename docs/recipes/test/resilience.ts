/** Test support for recipes.test.ts: `@trellis/resilience` on the shared test clock. */
import * as resilience from '@trellis/resilience';
import { clock } from './clock.js';

export * from '@trellis/resilience';

export const retry: typeof resilience.retry = (options) => resilience.retry({ clock, ...options });
export const circuitBreaker: typeof resilience.circuitBreaker = (options) =>
  resilience.circuitBreaker({ clock, ...options });
export const timeout: typeof resilience.timeout = (options) =>
  resilience.timeout(
    typeof options === 'object' && options !== null
      ? { clock, ...options }
      : { ms: options, clock },
  );
