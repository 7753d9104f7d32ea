export {
  classifyFault,
  classifyStatus,
  countsAgainstUpstream,
  type FaultKind,
  SHED_CODE,
  SHED_HEADER,
  type StatusFaultOptions,
} from './classifyFault.js';
export { asError, describeThrown } from './describeThrown.js';
