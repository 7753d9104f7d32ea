export { type BadTargetReason, type CanonicalTarget, canonicalPath } from './canonicalPath.js';
export { createGateway, type Gateway, type GatewayOptions } from './createGateway.js';
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
} from './gatewayConfig.js';
