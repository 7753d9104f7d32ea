/**
 * The one abortable wait of Trellis: resolves after `ms` on the given clock, rejects with an
 * `AbortedError` the moment the signal aborts, clamps the delay to what a timer can hold, and
 * can be unref'd so a background wait never keeps the process alive.
 */
import { type Clock, systemClock } from '../Clock.js';
import { AbortedError } from '../errors.js';
import { clampDelay } from './duration.js';

export interface SleepOptions {
  clock?: Clock;
  signal?: AbortSignal;
  /** Do not keep the process alive for this wait. Default false. */
  unref?: boolean;
}

/** Waits `ms` (clamped by `clampDelay`), or rejects with `AbortedError` when `signal` aborts. */
export function sleep(ms: number, options: SleepOptions = {}): Promise<void> {
  const { clock = systemClock, signal, unref = false } = options;
  if (signal?.aborted) return Promise.reject(abortedBy(signal));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimeout(timer);
      reject(abortedBy(signal as AbortSignal));
    };
    const timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, clampDelay(ms));
    if (unref) timer.unref?.();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The error an aborted wait (or any aborted operation) rejects with. */
export function abortedBy(signal: AbortSignal): InstanceType<typeof AbortedError> {
  return new AbortedError('the operation was aborted', { cause: signal.reason });
}
