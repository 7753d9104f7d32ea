export * from './admin/index.js';
export { type Clock, type ClockTimer, systemClock } from './Clock.js';
export * from './client/index.js';
export {
  DEADLINE_HEADER,
  getRequestContext,
  parseDeadlineHeader,
  type RequestContext,
  remainingMs,
  runWithContext,
  runWithDeadline,
} from './context.js';
export {
  isStreamResponse,
  type JsonSchema,
  ndjson,
  type OpenApiDocument,
  type OpenApiOptions,
  type SseEvent,
  type StreamFormat,
  type StreamItem,
  type StreamResponse,
  sse,
  toOpenApi,
} from './contract/index.js';
export type {
  Balancer,
  Instance,
  Pick,
  PickOptions,
  PickOutcome,
  Resolver,
} from './discovery.js';
export { Emitter, type Event } from './Event.js';
export {
  AbortedError,
  AdminClosingError,
  AdminMethodError,
  AdminNotFoundError,
  AdminUnauthorizedError,
  ConfigError,
  type ConfigIssue,
  ConnectError,
  HttpError,
  IdempotencyInProgressError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyRequiredError,
  IdempotencyMismatchError,
  IdempotencyStoreError,
  InternalError,
  MethodNotAllowedError,
  NoInstanceError,
  PayloadTooLargeError,
  RequestValidationError,
  ResendRefusedError,
  ResponseValidationError,
  ShedError,
  ShutdownError,
  StatusNameTakenError,
  ThrottledError,
  TimeoutError,
  UnsupportedMediaTypeError,
} from './errors.js';
export * from './faults/index.js';
export * from './health/index.js';
export * from './idempotency/index.js';
export { type Logger, silentLogger } from './Logger.js';
export * from './logging/index.js';
export * from './metrics/index.js';
export * from './options/index.js';
export { configError, formatPath, parseOptions, toIssues } from './options.js';
export { type ExecuteOptions, noopPolicy, type Policy, type PolicyContext } from './Policy.js';
export * from './problem/index.js';
export * from './server/index.js';
export * from './status/index.js';
export {
  defineError,
  type ErrorSpec,
  type FaultKind,
  isTrellisError,
  TrellisError,
  type TrellisErrorClass,
  type TrellisErrorOptions,
} from './TrellisError.js';
export * from './time/index.js';
export * from './tracing/index.js';
