export { type BadTargetReason, type CanonicalTarget, canonicalPath } from './canonicalPath.js';
export { createGateway, type Gateway, type GatewayOptions } from './createGateway.js';
export type { AccessLogLine } from './edge/accessLog.js';
export { hashApiKey } from './edge/apiKeys.js';
export { loadConfigFile } from './edge/loadConfigFile.js';
export * from './errors.js';
export type {
  GatewayDeps,
  GatewayErrorBody,
  GatewayIdentity,
  GatewayMiddleware,
  GatewayRequestContext,
} from './GatewayMiddleware.js';
export {
  type GatewayConfig,
  type GatewayConfigInput,
  gatewayConfigSchema,
  parseGatewayConfig,
  type RouteConfig,
  type RouteConfigInput,
} from './gatewayConfig.js';
