import { ConfigError, type Instance } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import type { Registrar } from './Registrar.js';
import { selfRegister } from './selfRegister.js';

function memoryRegistrar() {
  const live = new Map<string, Instance>();
  const registrar: Registrar<{ service: string }> = {
    async register(instance, { service }) {
      live.set(`${service}/${instance.id}`, instance);
      return {
        instance,
        async deregister() {
          live.delete(`${service}/${instance.id}`);
        },
      };
    },
  };
  return { live, registrar };
}

function fakeHealth() {
  const hooks: (() => Promise<void> | void)[] = [];
  return {
    hooks,
    addDeregistration(fn: () => Promise<void> | void) {
      hooks.push(fn);
      return () => {
        const i = hooks.indexOf(fn);
        if (i !== -1) hooks.splice(i, 1);
      };
    },
  };
}

const instance = { id: '127.0.0.1:8080', url: 'http://127.0.0.1:8080' };

describe('selfRegister', () => {
  it('registers at once and deregisters from the health shutdown hook', async () => {
    const { live, registrar } = memoryRegistrar();
    const health = fakeHealth();
    await selfRegister({ registrar, instance, options: { service: 'users' }, health });
    expect([...live.keys()]).toEqual(['users/127.0.0.1:8080']);
    expect(health.hooks).toHaveLength(1);
    await health.hooks[0]!();
    expect(live.size).toBe(0);
  });

  it('deregister() removes the hook and is idempotent', async () => {
    const { live, registrar } = memoryRegistrar();
    const health = fakeHealth();
    const reg = await selfRegister({ registrar, instance, options: { service: 'users' }, health });
    await reg.deregister();
    await reg.deregister();
    expect(live.size).toBe(0);
    expect(health.hooks).toHaveLength(0);
  });

  it('rejects a health object without addDeregistration', async () => {
    const { registrar } = memoryRegistrar();
    await expect(
      selfRegister({
        registrar,
        instance,
        options: { service: 'users' },
        health: {} as never,
      }),
    ).rejects.toThrow(ConfigError);
  });
});
