export * from './endpoint.js';
export {
  isStreamResponse,
  ndjson,
  type SseEvent,
  type StreamFormat,
  type StreamResponse,
  sse,
} from './stream.js';
export {
  type JsonSchema,
  type OpenApiDocument,
  type OpenApiOptions,
  toOpenApi,
} from './toOpenApi.js';
