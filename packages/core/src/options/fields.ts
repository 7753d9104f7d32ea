/**
 * The zod fields every Trellis factory uses for the options that are objects or functions
 * (a logger, a clock, a resolver, a policy, a metrics registry, a callback). One definition each,
 * so "is this a Logger?" has one answer and one message everywhere, and every factory validates
 * them through `parseOptions` (a `ConfigError` naming the field) instead of by hand.
 *
 * @example
 * ```ts
 * import { clockField, loggerField, parseOptions } from '@trellis/core';
 * import { z } from 'zod';
 * const schema = z.strictObject({ clock: clockField().optional(), logger: loggerField().optional() });
 * const options = parseOptions(schema, { logger: console }, 'myComponent');
 * console.log(typeof options.logger?.warn);
 * ```
 */
import { z } from 'zod';
import type { Clock } from '../Clock.js';
import type { Resolver } from '../discovery.js';
import type { Logger } from '../Logger.js';
import type { Policy } from '../Policy.js';

const isObject = (v: unknown): v is Record<string, unknown> =>
  (typeof v === 'object' || typeof v === 'function') && v !== null;

const hasMethods = (v: unknown, names: readonly string[]): boolean =>
  isObject(v) && names.every((n) => typeof (v as Record<string, unknown>)[n] === 'function');

/** A pino-compatible logger: `debug`, `info`, `warn` and `error` functions. */
export function loggerField() {
  return z.custom<Logger>((v) => hasMethods(v, ['debug', 'info', 'warn', 'error']), {
    message: 'must be a pino-compatible logger (debug, info, warn, error)',
  });
}

/** A {@link Clock}: `now`, `setTimeout` and `clearTimeout` (`createTestClock()` in tests). */
export function clockField() {
  return z.custom<Clock>((v) => hasMethods(v, ['now', 'setTimeout', 'clearTimeout']), {
    message: 'must be a Clock ({ now, setTimeout, clearTimeout })',
  });
}

/** A {@link Resolver}: `resolve`, `watch` and `close`. */
export function resolverField() {
  return z.custom<Resolver>((v) => hasMethods(v, ['resolve', 'watch', 'close']), {
    message: 'must be a Resolver ({ resolve, watch, close })',
  });
}

/** A {@link Policy}: an object with `execute()`. */
export function policyField() {
  return z.custom<Policy>((v) => hasMethods(v, ['execute']), {
    message: 'must be a Policy (an object with execute())',
  });
}

/** The part of a prom-client `Registry` Trellis registers metrics with. */
export interface MetricsRegistryLike {
  getSingleMetric(name: string): unknown;
  registerMetric(metric: never): void;
}

/** A prom-client `Registry` (e.g. `createMetrics().registry`). */
export function metricsField<R extends MetricsRegistryLike = MetricsRegistryLike>() {
  return z.custom<R>((v) => hasMethods(v, ['getSingleMetric', 'registerMetric']), {
    message: 'must be a prom-client Registry',
  });
}

/** A function option (zod 4's `z.function()` is not a schema, so only the type is checked). */
export function fnField<F extends (...args: never[]) => unknown>(what = 'a function') {
  return z.custom<F>((v) => typeof v === 'function', { message: `must be ${what}` });
}

/** An object with the named methods, e.g. `methodsField<Registrar>(['register'], 'a registrar')`. */
export function methodsField<T>(names: readonly string[], what: string) {
  return z.custom<T>((v) => hasMethods(v, names), {
    message: `must be ${what} (with ${names.map((n) => `${n}()`).join(', ')})`,
  });
}
