export type {
  BalancerOptions,
  EjectionEvent,
  OutlierOptions,
  TrellisBalancer,
} from './BalancerCore.js';
export { type ConsistentHashOptions, consistentHash } from './consistentHash.js';
export {
  type ConsulCheck,
  type ConsulDiscovery,
  type ConsulDiscoveryOptions,
  type ConsulRegisterOptions,
  consulDiscovery,
} from './consulDiscovery.js';
export {
  type DiscoveryCheck,
  type DiscoveryCheckOptions,
  type DiscoveryCheckResult,
  discoveryCheck,
  type StatusSource,
} from './discoveryCheck.js';
export { type DnsDiscovery, type DnsDiscoveryOptions, dnsDiscovery } from './dnsDiscovery.js';
export { DiscoveryUnavailableError, RegistrationError } from './errors.js';
export {
  type EtcdDiscovery,
  type EtcdDiscoveryOptions,
  type EtcdRegisterOptions,
  etcdDiscovery,
} from './etcdDiscovery.js';
export { instanceFromUrl, instanceUrlProblem } from './instances.js';
export { type LeastRequestOptions, leastRequest } from './leastRequest.js';
export { type PeakEwmaOptions, peakEwma } from './peakEwma.js';
export type { Registrar, Registration } from './Registrar.js';
export { type RandomOptions, random } from './random.js';
export { type RoundRobinOptions, roundRobin } from './roundRobin.js';
export type { ServiceStatus, StaleEvent } from './ServiceTable.js';
export {
  type DeregistrationHost,
  type SelfRegisterOptions,
  type SelfRegistration,
  selfRegister,
} from './selfRegister.js';
export { type ResolvedSrv, srvInstances } from './srvInstances.js';
export {
  type StaticDiscovery,
  type StaticDiscoveryOptions,
  type StaticInstance,
  staticDiscovery,
} from './staticDiscovery.js';
