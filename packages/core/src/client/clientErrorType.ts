/**
 * The `error.type` of one client attempt (span attribute and `error_type` metric label): a
 * bounded vocabulary in which every value belongs to exactly one fault kind of core's
 * `classifyFault`/`classifyStatus`, so dashboards tell upstream faults from the caller's own,
 * from overload and from local failures. OpenTelemetry's HTTP client conventions where they
 * apply: absent on success, the status code for an error answer, a low-cardinality identifier
 * otherwise, `_OTHER` as the fallback.
 */
import {
  AbortedError,
  ConnectError,
  HttpError,
  RequestValidationError,
  ResponseValidationError,
  ShutdownError,
  TimeoutError,
} from '../errors.js';
import {
  classifyFault,
  classifyStatus,
  type FaultKind,
  SHED_CODE,
} from '../faults/classifyFault.js';

/** Whose fault an attempt's outcome is, and its `error.type`; both undefined for a success. */
export interface ClientOutcome {
  readonly fault: FaultKind | undefined;
  readonly errorType: string | undefined;
}

const SUCCESS: ClientOutcome = { fault: undefined, errorType: undefined };

/** Every `error_type` value that is not a status code, with the fault kind it stands for. */
export const CLIENT_ERROR_TYPES = {
  shed: 'overload',
  throttled: 'overload',
  timeout: 'upstream',
  connection_error: 'upstream',
  _OTHER: 'upstream',
  aborted: 'caller',
  deadline: 'caller',
  request_invalid: 'caller',
  caller_error: 'caller',
  response_invalid: 'local',
  shutdown: 'local',
  local_error: 'local',
} as const satisfies Record<string, FaultKind>;

export type ClientErrorType = keyof typeof CLIENT_ERROR_TYPES;

const FALLBACK: Record<FaultKind, ClientErrorType> = {
  upstream: '_OTHER',
  overload: 'throttled',
  caller: 'caller_error',
  local: 'local_error',
};

/**
 * Classifies an attempt: `failure` is what it threw (undefined when it returned), `status` the
 * answer's status (0 when none came), `shed` whether the answer carried `x-trellis-shed`.
 *
 * Status answers: 4xx are `caller` (error type: the status), 429 is `overload` (`429`), a shed
 * 503 is `overload` (`shed`), 5xx are `upstream` (the status). Thrown errors go by
 * `classifyFault`: an abort (`aborted`) and the caller's own deadline (`deadline`) and a request
 * refused before sending (`request_invalid`) are the caller's; a response that fails its schema
 * or `maxResponseBytes` (`response_invalid`) is local; `timeout` and `connection_error` are the
 * upstream's.
 */
export function clientOutcome(failure: unknown, status: number, shed: boolean): ClientOutcome {
  if (failure === undefined) {
    if (status < 400) return SUCCESS;
    const fault = classifyStatus(status, { shed });
    return { fault, errorType: statusErrorType(status, fault) };
  }
  const fault = classifyFault(failure);
  return { fault, errorType: errorTypeOfFailure(failure, fault) };
}

function statusErrorType(status: number, fault: FaultKind | undefined): string {
  // A shed answer is overload whatever its status; a 429 keeps its status (always overload).
  if (fault === 'overload' && status !== 429) return 'shed';
  return String(status);
}

function errorTypeOfFailure(err: unknown, fault: FaultKind): string {
  // classifyFault already read the shed header and problem code.
  if (err instanceof HttpError) return statusErrorType(err.status, fault);
  if (err instanceof ResponseValidationError) return 'response_invalid';
  if (err instanceof RequestValidationError) return 'request_invalid';
  if (err instanceof AbortedError) return 'aborted';
  if (err instanceof TimeoutError) return fault === 'caller' ? 'deadline' : 'timeout';
  if (err instanceof ConnectError) return 'connection_error';
  if (err instanceof ShutdownError) return 'shutdown';
  if (fault === 'overload' && (err as { code?: unknown }).code === SHED_CODE) return 'shed';
  // DOMException AbortError / TimeoutError from a caller's signal.
  const name = (err as { name?: unknown } | null)?.name;
  if (fault === 'caller' && (name === 'AbortError' || name === 'TimeoutError')) return 'aborted';
  return FALLBACK[fault];
}
