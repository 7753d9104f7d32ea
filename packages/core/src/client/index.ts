export { CLIENT_DURATION_METRIC } from './ClientMetrics.js';
export {
  ClientThrottle,
  type ClientThrottleOptions,
  clientThrottle,
  isOverloadRejection,
} from './clientThrottle.js';
export {
  type BaseUrlClientOptions,
  type Client,
  type ClientOptions,
  type ClientOptionsBase,
  createClient,
  type ServiceClientOptions,
} from './createClient.js';
export {
  type CallOptions,
  defineEndpoints,
  type EndpointDefinition,
  type EndpointInput,
  type EndpointMap,
  type EndpointMethod,
  type EndpointResult,
  endpoint,
  type HttpMethod,
  type PathParamNames,
  type ResponseHeaders,
  type StatusResponse,
  type StatusSchemas,
} from './endpoint.js';
export type { IdempotencyKeyMode } from './idempotencyKey.js';
export { parseRetryAfter } from './retryAfter.js';
