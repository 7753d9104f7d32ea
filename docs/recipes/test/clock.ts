/** The one test clock the recipes run on (see recipes.test.ts). */
import { createTestClock } from '@trellis/core/testing';

export const clock = createTestClock(1_000_000);
