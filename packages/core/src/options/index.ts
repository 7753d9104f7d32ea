export {
  clockField,
  fnField,
  loggerField,
  type MetricsRegistryLike,
  methodsField,
  metricsField,
  policyField,
  resolverField,
} from './fields.js';
