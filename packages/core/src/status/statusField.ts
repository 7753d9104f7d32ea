import { z } from 'zod';
import type { StatusRegistryLike } from './StatusSource.js';

/** The zod field for a component's `status` option (a registry from `createStatusRegistry()`). */
export const statusField = z.custom<StatusRegistryLike>(
  (v) =>
    typeof v === 'object' && v !== null && typeof (v as StatusRegistryLike).register === 'function',
  'must be a StatusRegistry from createStatusRegistry()',
);
