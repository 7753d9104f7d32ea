export {
  createStatusRegistry,
  STATUS_NAME,
  type StatusDocument,
  type StatusEntry,
  type StatusRegistry,
  type StatusRegistryOptions,
} from './createStatusRegistry.js';
export {
  INSTRUMENT_POLICY,
  type InstrumentablePolicy,
  isInstrumentable,
  type PolicyInstrumentation,
} from './instrumentPolicy.js';
export type {
  InstanceStatus,
  StatusEvent,
  StatusEventInit,
  StatusKind,
  StatusRegistrable,
  StatusRegistryLike,
  StatusSeverity,
  StatusSource,
} from './StatusSource.js';
export { statusField } from './statusField.js';
export { statusMetricNames, statusMetrics } from './statusMetrics.js';
