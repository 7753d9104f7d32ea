/**
 * @trellis/outbox: a transactional outbox. Enqueue a message in the service's own transaction;
 * relays deliver it at least once, in order per key, with the message id as Idempotency-Key.
 * @module
 */
export {
  createOutbox,
  type DeadLetter,
  type Outbox,
  type OutboxInput,
  type OutboxMessage,
  type OutboxOptions,
  type OutboxStats,
  type Queryable,
  type Topics,
} from './createOutbox.js';
export { OutboxMessageInvalidError } from './errors.js';
export type {
  BackoffSettings,
  DeliverFn,
  DeliveryTarget,
  EndpointTarget,
  Relay,
  RelayOptions,
  RelayStats,
  UrlTarget,
} from './relay.js';
