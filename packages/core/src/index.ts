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
  NoInstanceError,
  RequestValidationError,
  ResponseValidationError,
  ShedError,
  ShutdownError,
  TimeoutError,
} from './errors.js';
export * from './faults/index.js';
export * from './health/index.js';
export * from './idempotency/index.js';
export { type Logger, silentLogger } from './Logger.js';
export * from './metrics/index.js';
export { formatPath, parseOptions, toIssues } from './options.js';
export { type ExecuteOptions, noopPolicy, type Policy, type PolicyContext } from './Policy.js';
export * from './problem/index.js';
export * from './server/index.js';
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
