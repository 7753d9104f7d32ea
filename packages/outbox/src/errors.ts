/**
 * Every error `@trellis/outbox` throws. docs/errors.md is generated from this file
 * (`npm run gen`).
 */
import { type ConfigIssue, defineError } from '@trellis/core';

export const OutboxMessageInvalidError = defineError<{
  readonly topic: string;
  readonly issues: readonly ConfigIssue[];
}>({
  code: 'TRELLIS_OUTBOX_MESSAGE_INVALID',
  name: 'OutboxMessageInvalidError',
  description:
    "`outbox.enqueue` refused a message before writing anything: an unknown topic, an empty or over-long key, or a payload that fails the topic's zod schema. `issues` names each field; throw it on to roll the transaction back.",
  status: 400,
  fault: 'caller',
});
export type OutboxMessageInvalidError = InstanceType<typeof OutboxMessageInvalidError>;
