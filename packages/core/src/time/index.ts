export {
  Backoff,
  type BackoffOptions,
  backoffDelay,
  backoffSchema,
  type ResolvedBackoff,
} from './backoff.js';
export {
  clampDelay,
  type DurationFieldOptions,
  durationMs,
  isTimerSafe,
  MAX_DELAY_MS,
} from './duration.js';
export { abortedBy, type SleepOptions, sleep } from './sleep.js';
