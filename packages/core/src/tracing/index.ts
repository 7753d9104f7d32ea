/**
 * Server tracing on `@opentelemetry/api` only (a no-op without an SDK).
 * @module
 */
export {
  createServerTracing,
  type ServerSpanRequest,
  type ServerTracing,
  type ServerTracingOptions,
  type StartedServerSpan,
  TRACER_NAME,
  withServerSpan,
} from './createServerTracing.js';
