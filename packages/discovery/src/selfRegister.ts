import {
  type Instance,
  type Logger,
  loggerField,
  methodsField,
  parseOptions,
  silentLogger,
} from '@trellis/core';
import { z } from 'zod';
import { instanceUrlSchema } from './instances.js';
import type { Registrar, Registration } from './Registrar.js';

/**
 * The part of core's health object `selfRegister` needs (`createHealth()` from
 * `@trellis/core/health` has it): deregistrations run in the shutdown sequence, after readiness
 * turns false and before connections close.
 */
export interface DeregistrationHost {
  addDeregistration(fn: () => Promise<void> | void): () => void;
}

export interface SelfRegisterOptions<O> {
  /** Where to register: `etcdDiscovery(...)` or `consulDiscovery(...)`. */
  readonly registrar: Registrar<O>;
  /** This process's instance (`{ id: 'host:port', url }`). */
  readonly instance: Instance;
  /** Registrar options, e.g. `{ service: 'users', ttlSeconds: 10 }`. */
  readonly options: O;
  /** Core's health object: deregistration joins its shutdown sequence. */
  readonly health?: DeregistrationHost;
  readonly logger?: Logger;
}

/** A self-registration; `deregister()` also removes the hook from the health object. */
export interface SelfRegistration extends Registration {}

const schema = z
  .object({
    registrar: methodsField<Registrar<unknown>>(
      ['register'],
      'a registrar (etcdDiscovery or consulDiscovery)',
    ),
    instance: z.object({ id: z.string().min(1), url: instanceUrlSchema }).passthrough(),
    options: z.unknown(),
    health: z
      .custom<DeregistrationHost>(
        (v) =>
          typeof v === 'object' &&
          v !== null &&
          typeof (v as DeregistrationHost).addDeregistration === 'function',
        'expected an object with addDeregistration() (createHealth from @trellis/core/health)',
      )
      .optional(),
    logger: loggerField().optional(),
  })
  .strict();

/**
 * Registers this service at startup and, given core's health object, deregisters it as part of
 * the shutdown sequence: after readiness turns false, before connections close, so clients stop
 * picking it while it still answers.
 *
 * @example
 * ```ts
 * import { createHealth } from '@trellis/core/health';
 * import { etcdDiscovery, selfRegister } from '@trellis/discovery';
 * const etcd = etcdDiscovery({ endpoints: ['http://127.0.0.1:2379'] });
 * const health = createHealth({ checks: {} });
 * await selfRegister({
 *   registrar: etcd,
 *   instance: { id: '10.0.0.7:8080', url: 'http://10.0.0.7:8080' },
 *   options: { service: 'users', ttlSeconds: 10 },
 *   health,
 * });
 * ```
 */
export async function selfRegister<O>(options: SelfRegisterOptions<O>): Promise<SelfRegistration> {
  const opts = parseOptions(schema, options, 'selfRegister');
  const logger = opts.logger ?? silentLogger;
  const registration = await options.registrar.register(options.instance, options.options);
  logger.info({ instance: registration.instance.id }, 'registered');
  let removeHook: (() => void) | undefined;
  let done = false;
  const deregister = async () => {
    if (done) return;
    done = true;
    removeHook?.();
    await registration.deregister();
    logger.info({ instance: registration.instance.id }, 'deregistered');
  };
  if (opts.health) removeHook = opts.health.addDeregistration(deregister);
  return { instance: registration.instance, deregister };
}
