/**
 * Health probes (IETF `application/health+json`) and the graceful shutdown sequence.
 * @module
 */

export {
  createHealth,
  type Health,
  type HealthBody,
  type HealthOptions,
  type HealthReport,
  type HealthState,
  type HealthStateChange,
  type ShutdownHook,
} from './createHealth.js';
export type {
  CheckDefinition,
  CheckFn,
  CheckOutcome,
  CheckResult,
  HealthStatus,
} from './HealthCheck.js';
