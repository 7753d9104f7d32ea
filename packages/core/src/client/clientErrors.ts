/** The errors a client call fails with, made from what went wrong on the wire. */
import {
  AbortedError,
  ConnectError,
  HttpError,
  RequestValidationError,
  ResponseValidationError,
  TimeoutError,
} from '../errors.js';
import { isTrellisError } from '../TrellisError.js';
import type { ClientExchange } from './ClientExchange.js';
import type { CompiledEndpoint } from './compileEndpoint.js';
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

/** The whole-call budget ran out. */
export function timeoutError(target: string, budget: number, cause?: unknown) {
  const ms = Math.max(0, Math.round(budget));
  return new TimeoutError(`createClient: call to ${target} did not finish within ${ms} ms`, {
    timeoutMs: ms,
    cause,
  });
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

/** Maps undici and socket errors to Trellis errors; Trellis errors pass through. */
export function toTransportError(
  err: unknown,
  target: string,
  origin: string,
  name: string,
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
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') {
    return new TimeoutError(`createClient: ${origin} stopped responding (${code})`, {
      timeoutMs: 0,
      cause: err,
    });
  }
  if (
    typeof code === 'string' &&
    (CONNECT_CODES.has(code) || code.startsWith('HPE_') || code.startsWith('ERR_SSL'))
  ) {
    return new ConnectError(
      `createClient: connection to ${origin} (${target}) failed: ${(err as Error).message}`,
      { target: origin, cause: err },
    );
  }
  return new ConnectError(
    `createClient: request to ${origin} (${target}) failed: ${String((err as Error)?.message ?? err)}`,
    { target: origin, cause: err },
  );
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

/** A status the endpoint declares no schema for. */
export function httpError(ep: CompiledEndpoint, exchange: ClientExchange) {
  const status = exchange.statusCode;
  return new HttpError(`${ep.name}: upstream answered ${status}`, {
    status,
    headers: exchange.headers,
    body: readBody(exchange, ep.method),
    retryAfterMs: parseRetryAfter(exchange.headers['retry-after']),
    retryable: status === 502 || status === 503 || status === 504,
  });
}

/** OpenTelemetry's `error.type`: the status, the error's name, or `_OTHER`. */
export function errorTypeOf(err: unknown, status: number): string {
  if (status >= 400) return String(status);
  if (err instanceof Error && err.name !== '') return err.name;
  return '_OTHER';
}
