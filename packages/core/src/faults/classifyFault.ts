/**
 * One rule for the whole toolkit: only upstream faults count against an upstream. The gateway,
 * the typed client, the balancers' outlier detection, circuit breakers and retry budgets all
 * ask this file, so a client's abort, its own deadline, a request it built wrong or an
 * upstream that sheds load on purpose never open a breaker or eject a healthy instance.
 *
 * @example
 * ```ts
 * import { classifyFault, countsAgainstUpstream } from '@trellis/core';
 * try {
 *   await fetch('http://127.0.0.1:1/');
 * } catch (err) {
 *   if (countsAgainstUpstream(classifyFault(err))) console.log('the upstream failed');
 * }
 * ```
 */
import { HttpError } from '../errors.js';
import type { FaultKind } from '../TrellisError.js';
import { isTrellisError } from '../TrellisError.js';

export type { FaultKind } from '../TrellisError.js';

/** The problem `code` (and `x-trellis-shed` header) of a Trellis service's load-shedding answer. */
export const SHED_CODE = 'TRELLIS_SHED';
/** Response header every shed answer carries (value: the reason), readable without the body. */
export const SHED_HEADER = 'x-trellis-shed';

// undici's error codes, by whose fault they are. Anything not listed that undici throws while
// talking to the upstream is an upstream fault.
const callerCodes = new Set([
  'UND_ERR_ABORTED',
  'UND_ERR_INVALID_ARG', // e.g. a header value with CR/LF: refused before anything is sent
  'UND_ERR_NOT_SUPPORTED', // e.g. `expect: 100-continue`
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_REQ_RETRY',
  'ABORT_ERR',
]);

export interface StatusFaultOptions {
  /** The answer carried `x-trellis-shed` or a problem `code` of `TRELLIS_SHED`. */
  shed?: boolean;
  /** Which statuses count as upstream failures. Default: every 5xx. */
  isFailureStatus?: (status: number) => boolean;
}

const defaultFailureStatus = (status: number) => status >= 500;

/**
 * Whose fault an answer with this status is, or `undefined` when it is a success. 429 and a shed
 * 503 are `overload`; failure statuses (5xx by default) are `upstream`; other 4xx are `caller`.
 */
export function classifyStatus(
  status: number,
  options: StatusFaultOptions = {},
): FaultKind | undefined {
  if (status === 429 || (options.shed === true && status === 503)) return 'overload';
  if ((options.isFailureStatus ?? defaultFailureStatus)(status)) return 'upstream';
  if (status >= 400) return 'caller';
  return undefined;
}

/**
 * Whose fault a thrown value is. Trellis errors say so themselves (`ConnectError` and an
 * upstream `TimeoutError` are `upstream`; a `TimeoutError` from the caller's inherited deadline,
 * `AbortedError` and `RequestValidationError` are `caller`; `ShedError` is `overload`; an
 * `HttpError` goes by its status and problem code). undici's and Node's own errors go by their
 * `code`. Anything else, a non-Error value included, is taken as a failure of the operation that
 * was called: `upstream`.
 */
export function classifyFault(error: unknown): FaultKind {
  if (error === null || (typeof error !== 'object' && typeof error !== 'function')) {
    return 'upstream';
  }
  if (isTrellisError(error)) {
    if (error instanceof HttpError) {
      const shed = error.problem?.code === SHED_CODE || headerSaysShed(error.headers);
      return classifyStatus(error.status, { shed }) ?? 'caller';
    }
    if ((error as { deadline?: unknown }).deadline === true) return 'caller';
    const kind = (error.constructor as { fault?: FaultKind }).fault;
    return kind ?? 'local';
  }
  const e = error as { name?: unknown; code?: unknown };
  if (e.name === 'AbortError' || e.name === 'TimeoutError') {
    // DOMException AbortError / TimeoutError: the caller's signal (AbortSignal.timeout included).
    return 'caller';
  }
  if (typeof e.code === 'string' && callerCodes.has(e.code)) return 'caller';
  return 'upstream';
}

/** True for the one kind that counts against an upstream's breaker, ejection and retry budget. */
export function countsAgainstUpstream(kind: FaultKind | undefined): boolean {
  return kind === 'upstream';
}

function headerSaysShed(headers: Readonly<Record<string, string | string[] | undefined>>): boolean {
  return headers?.[SHED_HEADER] !== undefined;
}
