export type { AdmissionLimiter, AdmissionPermit, PermitOutcome } from './AdmissionLimiter.js';
export {
  createShedder,
  SHED_METRIC,
  type ShedAnswer,
  type Shedder,
  type ShedderContext,
  type ShedOptions,
  type ShedReason,
  writeShed,
} from './createShedder.js';
