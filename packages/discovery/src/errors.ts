/**
 * Every error `@trellis/discovery` throws. docs/errors.md is generated from this file
 * (`npm run gen`). Core's `NoInstanceError` (no instance to pick) and `ConfigError` (bad options)
 * are used as they are.
 */
import { defineError } from '@trellis/core';

export const DiscoveryUnavailableError = defineError<{
  /** `dns`, `etcd` or `consul`. */
  readonly backend: string;
  /** The service being resolved, when the failure concerns one. */
  readonly service: string | undefined;
}>({
  code: 'TRELLIS_DISCOVERY_UNAVAILABLE',
  name: 'DiscoveryUnavailableError',
  description:
    'The discovery backend (DNS server, etcd, Consul) could not be reached or answered with an error, and there is no last known good instance list to fall back on. `cause` holds the underlying error. Retry later.',
  status: 503,
  retryable: true,
});
export type DiscoveryUnavailableError = InstanceType<typeof DiscoveryUnavailableError>;

export const RegistrationError = defineError<{
  readonly backend: string;
  /** The id of the instance that could not be registered or deregistered. */
  readonly instanceId: string;
}>({
  code: 'TRELLIS_REGISTRATION_FAILED',
  name: 'RegistrationError',
  description:
    'Registering (or deregistering) an instance with etcd or Consul failed: the backend was unreachable or rejected the request. `cause` holds the underlying error.',
  retryable: true,
});
export type RegistrationError = InstanceType<typeof RegistrationError>;
