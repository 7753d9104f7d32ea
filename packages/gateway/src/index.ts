export type {
  GatewayDeps,
  GatewayIdentity,
  GatewayMiddleware,
  GatewayRequestContext,
} from './chain/GatewayMiddleware.js';
export {
  type GatewayConfig,
  type GatewayConfigInput,
  gatewayConfigSchema,
  parseGatewayConfig,
  type RouteConfig,
  type RouteConfigInput,
} from './config/gatewayConfig.js';
export { loadConfigFile } from './config/loadConfigFile.js';
export { createGateway, type Gateway, type GatewayOptions } from './createGateway.js';
export * from './errors.js';
export type { AccessLogLine } from './observe/accessLog.js';
export {
  type BadTargetReason,
  type CanonicalTarget,
  canonicalPath,
} from './proxy/canonicalPath.js';
export { hashApiKey } from './stages/auth/apiKeys.js';
