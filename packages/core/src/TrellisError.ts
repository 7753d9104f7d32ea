/**
 * The base of every error Trellis throws, and the factory that makes each error class a line or
 * two. Errors carry a stable `code` (`TRELLIS_...`), an optional `cause`, and a `Symbol.for`
 * brand, so `instanceof` holds even when two copies of a Trellis package are loaded (undici's
 * trick). The catalogue in docs/errors.md is generated from the `defineError` calls.
 *
 * @example
 * ```ts
 * export const WidgetError = defineError<{ widget: string }>({
 *   code: 'TRELLIS_WIDGET', name: 'WidgetError', description: 'The widget broke.',
 * });
 * throw new WidgetError('widget 7 broke', { widget: '7' });
 * ```
 */

const kTrellisError = Symbol.for('trellis.error');

function hasBrand(value: unknown, brand: symbol): boolean {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    (value as Record<symbol, unknown>)[brand] === true
  );
}

export interface TrellisErrorOptions {
  /** The error or value that caused this one. */
  cause?: unknown;
  /** Overrides the class default: may a caller safely retry the operation that failed? */
  retryable?: boolean;
}

export class TrellisError extends Error {
  /** Stable machine-readable code, e.g. `TRELLIS_CONFIG_INVALID`. Never changes across versions. */
  readonly code: string;
  /** Whether retrying the failed operation may succeed. Policies read this by default. */
  readonly retryable: boolean;

  constructor(message: string, options: TrellisErrorOptions & { code?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'TrellisError';
    this.code = options.code ?? 'TRELLIS_ERROR';
    this.retryable = options.retryable ?? false;
  }

  get [kTrellisError](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return hasBrand(value, kTrellisError);
  }
}

/** What `defineError` needs to know about an error; also what docs/errors.md is made from. */
export interface ErrorSpec {
  /** `TRELLIS_` + upper snake case. */
  code: `TRELLIS_${string}`;
  /** The class name, e.g. `CircuitOpenError`. */
  name: string;
  /** One or two sentences for docs/errors.md: when it is thrown and what to do about it. */
  description: string;
  /** The HTTP status a server answers with when this error reaches it, if any. */
  status?: number;
  /** Default for `retryable`. */
  retryable?: boolean;
  /**
   * Whose fault this error is, for `classifyFault`: `upstream` errors count against an
   * upstream's breaker, outlier detection and retry budget; the others never do. Default `local`.
   */
  fault?: FaultKind;
}

/**
 * Whose fault a failure is (see `classifyFault`):
 * - `upstream`: the called service or the path to it failed (connect error, reset, upstream
 *   timeout, 5xx, invalid HTTP). Only these count against a breaker, an outlier detector or a
 *   retry budget.
 * - `overload`: the upstream refused on purpose to protect itself (`TRELLIS_SHED`, 429). Feeds
 *   client-side throttling; never opens a breaker or ejects an instance.
 * - `caller`: the caller's own doing (an abort, its own deadline, a request built wrong, a 4xx).
 * - `local`: failed here, not at the upstream (a response that fails a local schema or
 *   transform, a policy's own rejection, a configuration error).
 */
export type FaultKind = 'upstream' | 'overload' | 'caller' | 'local';

type CtorArgs<P> = {} extends P
  ? [message: string, options?: TrellisErrorOptions & P]
  : [message: string, options: TrellisErrorOptions & P];

/** A class made by {@link defineError}. */
export interface TrellisErrorClass<P extends object> {
  new (...args: CtorArgs<P>): TrellisError & Readonly<P>;
  readonly code: string;
  readonly description: string;
  readonly status: number | undefined;
  readonly fault: FaultKind;
  [Symbol.hasInstance](value: unknown): boolean;
}

/**
 * Makes an error class with a fixed code, name and brand. `P` lists the extra properties each
 * instance carries; they are passed in the options object next to `cause`.
 */
export function defineError<P extends object = {}>(spec: ErrorSpec): TrellisErrorClass<P> {
  if (!/^TRELLIS_[A-Z0-9_]+$/.test(spec.code)) {
    throw new TypeError(`defineError: code "${spec.code}" must match TRELLIS_[A-Z0-9_]+`);
  }
  const brand = Symbol.for(`trellis.error.${spec.code}`);
  class Defined extends TrellisError {
    static readonly code = spec.code;
    static readonly description = spec.description;
    static readonly status = spec.status;
    static readonly fault: FaultKind = spec.fault ?? 'local';

    constructor(message: string, options: TrellisErrorOptions & Record<string, unknown> = {}) {
      const { cause, retryable, ...props } = options;
      super(message, {
        cause,
        retryable: retryable ?? spec.retryable ?? false,
        code: spec.code,
      });
      this.name = spec.name;
      Object.assign(this, props);
    }

    get [brand](): true {
      return true;
    }

    static override [Symbol.hasInstance](value: unknown): boolean {
      return hasBrand(value, brand);
    }
  }
  Object.defineProperty(Defined, 'name', { value: spec.name });
  return Defined as unknown as TrellisErrorClass<P>;
}

/** True for any error thrown by any copy of any Trellis package. */
export function isTrellisError(value: unknown): value is TrellisError {
  return hasBrand(value, kTrellisError);
}
