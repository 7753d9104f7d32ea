/**
 * Every error `@trellis/core` throws. docs/errors.md is generated from this file
 * (`npm run gen`), so add new errors here, with a description.
 */
import type { Problem } from './problem/Problem.js';
import { defineError } from './TrellisError.js';

export interface ConfigIssue {
  /** Dotted path of the offending field, e.g. `checks.db.timeoutMs` or `routes[0].path`. */
  readonly path: string;
  readonly message: string;
}

export const ConfigError = defineError<{
  /** Which function or component rejected the options, e.g. `retry`. */
  readonly component: string;
  readonly issues: readonly ConfigIssue[];
}>({
  code: 'TRELLIS_CONFIG_INVALID',
  name: 'ConfigError',
  description:
    'Options passed to a Trellis function failed validation. The message and `issues` name each offending field path.',
});
export type ConfigError = InstanceType<typeof ConfigError>;

export const TimeoutError = defineError<{
  readonly timeoutMs: number;
  /**
   * True when the limit that ran out was the caller's inherited deadline
   * (`x-trellis-deadline-ms` or `runWithDeadline`), not this component's own timeout: then it is
   * the caller's fault and never counts against the upstream.
   */
  readonly deadline?: boolean;
}>({
  code: 'TRELLIS_TIMEOUT',
  name: 'TimeoutError',
  description:
    'An operation did not finish within its time limit or before the caller deadline. Its signal was aborted.',
  status: 504,
  retryable: true,
  fault: 'upstream',
});
export type TimeoutError = InstanceType<typeof TimeoutError>;

export const AbortedError = defineError({
  code: 'TRELLIS_ABORTED',
  name: 'AbortedError',
  description: "The caller's AbortSignal aborted the operation. `cause` holds the signal's reason.",
  fault: 'caller',
});
export type AbortedError = InstanceType<typeof AbortedError>;

export const HttpError = defineError<{
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: unknown;
  /** From the `Retry-After` header, when present. */
  readonly retryAfterMs: number | undefined;
  /** The RFC 9457 problem body, when the upstream answered `application/problem+json`. */
  readonly problem?: Problem;
}>({
  code: 'TRELLIS_HTTP_STATUS',
  name: 'HttpError',
  description:
    'An upstream answered with a non-2xx status that the endpoint declares no schema for. Carries `status`, `headers`, the parsed `body` and `retryAfterMs`; 502, 503 and 504 are retryable.',
});
export type HttpError = InstanceType<typeof HttpError>;

export const RequestValidationError = defineError<{ readonly issues: readonly ConfigIssue[] }>({
  code: 'TRELLIS_REQUEST_INVALID',
  name: 'RequestValidationError',
  description:
    "A typed client call's params, query, headers or body failed the endpoint's schema. Thrown before any I/O.",
  status: 400,
  fault: 'caller',
});
export type RequestValidationError = InstanceType<typeof RequestValidationError>;

export const ResponseValidationError = defineError<{
  readonly status: number;
  readonly issues: readonly ConfigIssue[];
  readonly body: unknown;
}>({
  code: 'TRELLIS_RESPONSE_INVALID',
  name: 'ResponseValidationError',
  description:
    "An upstream's response body did not match the endpoint's response schema. `issues` holds the schema issues.",
});
export type ResponseValidationError = InstanceType<typeof ResponseValidationError>;

export const ConnectError = defineError<{ readonly target: string }>({
  code: 'TRELLIS_CONNECT_FAILED',
  name: 'ConnectError',
  description:
    'The connection to an upstream was refused, reset or unreachable, or the upstream answered with invalid HTTP. Retryable: the request may not have reached the upstream.',
  status: 502,
  retryable: true,
  fault: 'upstream',
});
export type ConnectError = InstanceType<typeof ConnectError>;

export const ResendRefusedError = defineError({
  code: 'TRELLIS_RESEND_REFUSED',
  name: 'ResendRefusedError',
  description:
    'A policy (a hedge, a retry) asked the typed client to send a request again while an earlier copy may have reached the upstream, and the request is not idempotent and carries no `Idempotency-Key`. Nothing was sent; `cause` holds the earlier failure when there is one.',
  fault: 'local',
});
export type ResendRefusedError = InstanceType<typeof ResendRefusedError>;

export const NoInstanceError = defineError<{ readonly service: string }>({
  code: 'TRELLIS_NO_INSTANCE',
  name: 'NoInstanceError',
  description:
    'Discovery returned no instance for the service, or the balancer has ejected every instance. Retry later.',
  status: 503,
  retryable: true,
});
export type NoInstanceError = InstanceType<typeof NoInstanceError>;

export const ShutdownError = defineError({
  code: 'TRELLIS_SHUTTING_DOWN',
  name: 'ShutdownError',
  description: 'The component is shutting down or closed and no longer accepts work.',
  status: 503,
});
export type ShutdownError = InstanceType<typeof ShutdownError>;

export const ShedError = defineError<{
  /** Why the request was refused: `deadline`, `limit`, `event-loop`, ... */
  readonly reason: string;
  readonly retryAfterMs: number | undefined;
}>({
  code: 'TRELLIS_SHED',
  name: 'ShedError',
  description:
    'A Trellis service refused the request to protect itself from overload (load shedding) and answered 503 with `Retry-After`. The fault classifier treats it as overload: it never opens a breaker or ejects an instance.',
  status: 503,
  retryable: true,
  fault: 'overload',
});
export type ShedError = InstanceType<typeof ShedError>;

export const InternalError = defineError({
  code: 'TRELLIS_INTERNAL',
  name: 'InternalError',
  description:
    'An unexpected error inside a handler or Trellis itself. Servers answer 500 with this code and a generic detail; the real error goes to the log, never to the client.',
  status: 500,
});
export type InternalError = InstanceType<typeof InternalError>;

export const ThrottledError = defineError<{
  /** The probability with which calls were being rejected locally at the time. */
  readonly probability: number;
  /** Calls and upstream accepts in the throttle's window at the time. */
  readonly requests: number;
  readonly accepts: number;
}>({
  code: 'TRELLIS_THROTTLED',
  name: 'ThrottledError',
  description:
    'Client-side throttling (Google SRE book, "Handling Overload") rejected the call locally without sending it, because the upstream has been rejecting calls as overloaded (429, 503 with Retry-After, `TRELLIS_SHED`). Not retryable: retrying would add the load the throttle keeps off the upstream.',
  status: 503,
  retryable: false,
  fault: 'overload',
});
export type ThrottledError = InstanceType<typeof ThrottledError>;
export const MethodNotAllowedError = defineError<{ readonly allow: readonly string[] }>({
  code: 'TRELLIS_METHOD_NOT_ALLOWED',
  name: 'MethodNotAllowedError',
  description:
    'A served contract declares the request path but not its method. Answered 405 with an `Allow` header listing the declared methods.',
  status: 405,
  fault: 'caller',
});
export type MethodNotAllowedError = InstanceType<typeof MethodNotAllowedError>;

export const UnsupportedMediaTypeError = defineError({
  code: 'TRELLIS_UNSUPPORTED_MEDIA_TYPE',
  name: 'UnsupportedMediaTypeError',
  description:
    'A served contract expects a JSON request body (`application/json` or `+json`) and the request declared another content type. Answered 415.',
  status: 415,
  fault: 'caller',
});
export type UnsupportedMediaTypeError = InstanceType<typeof UnsupportedMediaTypeError>;

export const PayloadTooLargeError = defineError<{ readonly limit: number }>({
  code: 'TRELLIS_PAYLOAD_TOO_LARGE',
  name: 'PayloadTooLargeError',
  description:
    "A request body is larger than the served contract's `bodyLimit` (default 1 MiB). Answered 413; the rest of the body is not read.",
  status: 413,
  fault: 'caller',
});
export type PayloadTooLargeError = InstanceType<typeof PayloadTooLargeError>;
export const StatusNameTakenError = defineError<{ readonly name: string }>({
  code: 'TRELLIS_STATUS_NAME',
  name: 'StatusNameTakenError',
  description:
    'A component tried to register with a status registry under a name that is invalid or registered already. Give each component its own `name` (keyed breakers register as `name/key`).',
});
export type StatusNameTakenError = InstanceType<typeof StatusNameTakenError>;

export const AdminUnauthorizedError = defineError({
  code: 'TRELLIS_ADMIN_UNAUTHORIZED',
  name: 'AdminUnauthorizedError',
  description:
    'An admin API request carried no bearer token, or a wrong one. The answer is 401 with `WWW-Authenticate: Bearer`.',
  status: 401,
  fault: 'caller',
});
export type AdminUnauthorizedError = InstanceType<typeof AdminUnauthorizedError>;

export const AdminNotFoundError = defineError({
  code: 'TRELLIS_ADMIN_NOT_FOUND',
  name: 'AdminNotFoundError',
  description:
    'The admin API knows no such path, breaker, service or instance (or the named entry has no such control).',
  status: 404,
  fault: 'caller',
});
export type AdminNotFoundError = InstanceType<typeof AdminNotFoundError>;

export const AdminMethodError = defineError({
  code: 'TRELLIS_ADMIN_METHOD',
  name: 'AdminMethodError',
  description:
    'The admin API path exists but not for this method (reads are GET, controls are POST). The answer carries `Allow`.',
  status: 405,
  fault: 'caller',
});
export type AdminMethodError = InstanceType<typeof AdminMethodError>;

export const AdminClosingError = defineError({
  code: 'TRELLIS_ADMIN_CLOSING',
  name: 'AdminClosingError',
  description:
    'A control action (isolate, reset, eject, restore) arrived while the service shuts down; it was not applied.',
  status: 409,
  fault: 'caller',
});
export type AdminClosingError = InstanceType<typeof AdminClosingError>;
export const IdempotencyKeyRequiredError = defineError({
  code: 'TRELLIS_IDEMPOTENCY_KEY_REQUIRED',
  name: 'IdempotencyKeyRequiredError',
  description:
    "The route requires an `Idempotency-Key` header and the request carried none. Answered 400; send a unique key per logical operation (the typed client does with `idempotencyKey: 'auto'`).",
  status: 400,
  fault: 'caller',
});
export type IdempotencyKeyRequiredError = InstanceType<typeof IdempotencyKeyRequiredError>;

export const IdempotencyKeyInvalidError = defineError<{
  /** What is wrong with the key: empty, too long, a control character, ... */
  readonly reason: string;
}>({
  code: 'TRELLIS_IDEMPOTENCY_KEY_INVALID',
  name: 'IdempotencyKeyInvalidError',
  description:
    'The `Idempotency-Key` header is neither a bare token nor an RFC 8941 quoted string, is empty, too long, holds a control or non-ASCII character, or was sent more than once. Answered 400; the detail names the fault.',
  status: 400,
  fault: 'caller',
});
export type IdempotencyKeyInvalidError = InstanceType<typeof IdempotencyKeyInvalidError>;

export const IdempotencyInProgressError = defineError<{ readonly retryAfterMs: number }>({
  code: 'TRELLIS_IDEMPOTENCY_IN_PROGRESS',
  name: 'IdempotencyInProgressError',
  description:
    'A request with the same `Idempotency-Key` (and the same content) is still running. Answered 409 with `Retry-After`; the typed client retries it after that delay, when a retry policy is set.',
  status: 409,
  retryable: true,
  fault: 'caller',
});
export type IdempotencyInProgressError = InstanceType<typeof IdempotencyInProgressError>;

export const IdempotencyMismatchError = defineError({
  code: 'TRELLIS_IDEMPOTENCY_MISMATCH',
  name: 'IdempotencyMismatchError',
  description:
    'The `Idempotency-Key` was already used for a different request (another method, path or body) in the same scope. Answered 422; use a new key for a new operation.',
  status: 422,
  fault: 'caller',
});
export type IdempotencyMismatchError = InstanceType<typeof IdempotencyMismatchError>;

export const IdempotencyStoreError = defineError({
  code: 'TRELLIS_IDEMPOTENCY_UNAVAILABLE',
  name: 'IdempotencyStoreError',
  description:
    "The idempotency store (Redis, Postgres) failed or did not answer in time, or the memory store is full of running requests. With `onStoreError: 'closed'` (the default) the request is refused with 503 and `Retry-After`; with `'open'` it runs unprotected and a warning is logged.",
  status: 503,
  retryable: true,
  fault: 'local',
});
export type IdempotencyStoreError = InstanceType<typeof IdempotencyStoreError>;
