export type { BackoffOptions } from '@trellis/core';
export {
  type AdaptiveLimitOptions,
  AdaptiveLimitPolicy,
  adaptiveLimit,
  type LimitAlgorithmName,
  type LimitChangeEvent,
  type LimitExecuteOptions,
  type LimitRejectEvent,
  type LimitSampleEvent,
  limitDefaults,
} from './adaptiveLimit/adaptiveLimit.js';
export type { AimdOptions } from './adaptiveLimit/aimd.js';
export type { Gradient2Options } from './adaptiveLimit/gradient2.js';
export type { VegasOptions } from './adaptiveLimit/vegas.js';
export type { WindowOptions } from './adaptiveLimit/windowed.js';
export {
  type BulkheadOptions,
  BulkheadPolicy,
  type BulkheadRejectEvent,
  bulkhead,
} from './bulkhead.js';
export {
  type BreakerPermit,
  type CallResult,
  type CircuitBreakerOptions,
  CircuitBreakerPolicy,
  type CircuitSnapshot,
  type CircuitState,
  circuitBreaker,
  type OpenReason,
  type StateChangeEvent,
} from './circuitBreaker.js';
export {
  BulkheadRejectedError,
  CircuitOpenError,
  LimitExceededError,
  RateLimitedError,
} from './errors.js';
export { type FallbackOptions, FallbackPolicy, fallback } from './fallback.js';
export {
  type HedgeEvent,
  type HedgeOptions,
  HedgePolicy,
  hedge,
  idempotent,
  isIdempotent,
} from './hedge.js';
export { type InstrumentOptions, instrument, metricNames } from './instrument.js';
export {
  type KeyedCircuitBreaker,
  type KeyedCircuitBreakerOptions,
  type KeyedStateChangeEvent,
  keyedCircuitBreaker,
} from './keyedCircuitBreaker.js';
export { PipelinePolicy, pipeline } from './pipeline.js';
export { RetryBudget, type RetryBudgetOptions, retryBudget } from './RetryBudget.js';
export {
  type RateLimitOptions,
  RateLimitPolicy,
  type RateLimitResult,
  type RedisClientLike,
  rateLimit,
  type StoreErrorEvent,
} from './rateLimit.js';
export {
  type GiveUpEvent,
  type GiveUpReason,
  type RetryEvent,
  type RetryOptions,
  RetryPolicy,
  retry,
} from './retry.js';
export { type TimeoutEvent, type TimeoutOptions, TimeoutPolicy, timeout } from './timeout.js';
