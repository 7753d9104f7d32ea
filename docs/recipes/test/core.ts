/**
 * Test support for recipes.test.ts: `@trellis/core`, with the shared test clock injected into
 * the factories a recipe calls, so the recipe's own code runs unchanged on fake time (only its
 * import specifier is pointed here).
 */
import * as core from '@trellis/core';
import { clock } from './clock.js';

export * from '@trellis/core';

export const createClient: typeof core.createClient = ((options: object) =>
  core.createClient({ clock, ...options } as never)) as never;
export const createHealth: typeof core.createHealth = ((options: object) =>
  core.createHealth({ clock, ...options } as never)) as never;
