import type { Instance } from '@trellis/core';

/** A live registration. `deregister()` removes the instance; calling it again does nothing. */
export interface Registration {
  readonly instance: Instance;
  deregister(): Promise<void>;
}

/** Something that can register instances: `etcdDiscovery()` and `consulDiscovery()`. */
export interface Registrar<O> {
  register(instance: Instance, options: O): Promise<Registration>;
}
