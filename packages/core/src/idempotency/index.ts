export {
  createIdempotency,
  type HandlerAnswer,
  type Idempotency,
  type IdempotencyBegin,
  type IdempotencyClaim,
  type IdempotencyOptions,
  type IdempotencyReply,
  type IdempotentRequest,
  idempotencyOf,
} from './createIdempotency.js';
export { canonicalJson, fingerprint } from './fingerprint.js';
export type {
  ClaimOptions,
  ClaimResult,
  CompleteOptions,
  IdempotencyStore,
  RecordedAnswer,
  RecordId,
} from './IdempotencyStore.js';
export { type MemoryStoreOptions, memoryStore } from './memoryStore.js';
export {
  DEFAULT_MAX_KEY_LENGTH,
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  type ParsedKey,
  parseIdempotencyKey,
  quoteIdempotencyKey,
} from './parseIdempotencyKey.js';
export {
  isTransactionalStore,
  type Queryable,
  type TransactionalIdempotencyStore,
} from './transactional.js';
