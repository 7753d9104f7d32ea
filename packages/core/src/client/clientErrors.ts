/** The errors a client call fails with, made from what went wrong on the wire. */
import {
  AbortedError,
  ConnectError,
  HttpError,
  RequestValidationError,
  ResponseValidationError,
  TimeoutError,
} from '../errors.js';

import { SHED_CODE, SHED_HEADER } from '../faults/classifyFault.js';
import { describeThrown } from '../faults/describeThrown.js';
import { parseProblem } from '../problem/Problem.js';
import { isTrellisError } from '../TrellisError.js';
import type { ClientExchange } from './ClientExchange.js';
import type { CompiledEndpoint } from './compileEndpoint.js';
import { isInProgressConflict } from './idempotencyKey.js';
import { readBody } from './responseBody.js';
import { parseRetryAfter } from './retryAfter.js';

/**
 * The error for an aborted attempt signal: the policy's own reason when it aborted with a
 * Trellis error (a policy timeout), otherwise `AbortedError` carrying the signal's reason.
 */
export function abortError(signal: AbortSignal, callerSignal: AbortSignal | undefined): Error {
  const reason: unknown = signal.reason;
  if (callerSignal?.aborted !== true && isTrellisError(reason)) return reason;
  return new AbortedError('createClient: the call was aborted', { cause: reason });
}

/** The limit a whole call runs under, and where it came from. */
export interface CallLimit {
  /** The call's budget in ms. */
  readonly budget: number;
  /**
   * True when the caller's inherited deadline (`runWithDeadline`, a trusted
   * `x-trellis-deadline-ms`) set the budget: running out of it is then the caller's fault.
   */
  readonly deadline: boolean;
}

/** The whole-call limit ran out: the client's (or the call's) `timeoutMs`, or the caller's deadline. */
export function timeoutError(target: string, limit: CallLimit, cause?: unknown, retryable = true) {
  const ms = Math.max(0, Math.round(limit.budget));
  if (limit.deadline) {
    return new TimeoutError(
      `createClient: call to ${target} ran out of the caller's deadline (${ms} ms were left when it started)`,
      { timeoutMs: ms, deadline: true, retryable: false, cause },
    );
  }
  return new TimeoutError(
    `createClient: call to ${target} did not finish within its timeoutMs (${ms} ms)`,
    { timeoutMs: ms, retryable, cause },
  );
}

const CONNECT_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
]);

// Failures that prove the request never left this process: nothing to fear from sending again.
const NOT_SENT_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_INVALID_ARG',
]);

/** True unless `err` proves the request never reached the upstream. */
export function mayHaveReached(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return !(typeof code === 'string' && NOT_SENT_CODES.has(code));
}

/**
 * Maps undici and socket errors to Trellis errors; Trellis errors pass through. `resendable`
 * is false for a request that must not be sent twice (not idempotent, no `Idempotency-Key`):
 * then an error after the request may have reached the upstream is not retryable.
 */
export function toTransportError(
  err: unknown,
  target: string,
  origin: string,
  name: string,
  resendable = true,
): Error {
  if (isTrellisError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'UND_ERR_INVALID_ARG') {
    // undici refused the request itself (e.g. a header value with CR/LF): the caller's input.
    const message = (err as Error).message;
    return new RequestValidationError(`${name}: invalid request: ${message}`, {
      issues: [{ path: 'headers', message }],
      cause: err,
    });
  }
  const retryable = resendable || !mayHaveReached(err);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new TimeoutError(`createClient: ${origin} stopped responding (${code})`, {
      timeoutMs: 0,
      retryable,
      cause: err,
    });
  }
  // The base URL is its own origin (or starts with it): name the service only when it differs.
  const where = target.startsWith(origin) ? origin : `${origin} (service "${target}")`;
  const what =
    typeof code === 'string' &&
    (CONNECT_CODES.has(code) || code.startsWith('HPE_') || code.startsWith('ERR_SSL'))
      ? 'connection to'
      : 'request to';
  return new ConnectError(`createClient: ${what} ${where} failed: ${describeThrown(err)}`, {
    target: origin,
    retryable,
    cause: err,
  });
}

/** The response body passed `maxResponseBytes`. */
export function tooLargeError(ep: CompiledEndpoint, exchange: ClientExchange, max: number) {
  const message = `body is larger than maxResponseBytes (${max})`;
  return new ResponseValidationError(`${ep.name}: invalid response: ${message}`, {
    status: exchange.statusCode,
    issues: [{ path: '(body)', message }],
    body: undefined,
  });
}

/**
 * A status the endpoint declares no schema for. 502, 503 and 504 are retryable, except for a
 * request that must not be sent twice (`resendable` false) unless the answer says it was not
 * processed (a Trellis service's shed answer). An `application/problem+json` body is
 * parsed into `problem`.
 */
export function httpError(ep: CompiledEndpoint, exchange: ClientExchange, resendable = true) {
  const status = exchange.statusCode;
  const headers = exchange.headers;
  const body = readBody(exchange, ep.method);
  const type = headers['content-type'];
  const problem = typeof type === 'string' ? parseProblem(type, body) : undefined;
  const shed = headers[SHED_HEADER] !== undefined || problem?.code === SHED_CODE;
  const transient = status === 502 || status === 503 || status === 504;
  return new HttpError(`${ep.name}: upstream answered ${status}`, {
    status,
    headers,
    body,
    retryAfterMs: parseRetryAfter(headers['retry-after']),
    retryable: (transient && (resendable || shed)) || isInProgressConflict(status, headers, body),
    ...(problem !== undefined && { problem }),
  });
}
