/** The zod schema shared by every `clock` option. Internal. */
import type { Clock } from '@trellis/core';
import { z } from 'zod';

export const clockSchema = z.custom<Clock>(
  (value) =>
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Clock).now === 'function' &&
    typeof (value as Clock).setTimeout === 'function' &&
    typeof (value as Clock).clearTimeout === 'function',
  { message: 'must be a Clock ({ now, setTimeout, clearTimeout })' },
);

/** A function option (zod 4's `z.function()` is not a schema, so check the type only). */
export function fnSchema<F extends (...args: never[]) => unknown>() {
  return z.custom<F>((value) => typeof value === 'function', { message: 'must be a function' });
}
