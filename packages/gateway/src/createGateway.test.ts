import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { ConfigError, type Instance, type Resolver } from '@trellis/core';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { GatewayConfigInput } from './config/gatewayConfig.js';
import { createGateway, type Gateway } from './createGateway.js';

describe('createGateway', () => {
  it('has the documented shape', () => {
    expectTypeOf(createGateway).returns.toEqualTypeOf<Gateway>();
    expectTypeOf<Gateway['handler']>().toEqualTypeOf<
      (req: IncomingMessage, res: ServerResponse) => void
    >();
    expectTypeOf<Gateway['listen']>().returns.resolves.toEqualTypeOf<{
      readonly port: number;
      readonly host: string;
      readonly adminPort: number | undefined;
    }>();
    expectTypeOf<Gateway['attachUpgrade']>().parameter(0).toEqualTypeOf<Server>();
    expectTypeOf<GatewayConfigInput['routes'][number]['path']>().toEqualTypeOf<string>();
  });

  it('rejects bad config and bad options with a ConfigError naming the field', () => {
    expect(() => createGateway({ routes: [{ path: '/a', upstream: {} }] })).toThrow(
      /routes\[0\]\.upstream: give exactly one of urls or service/,
    );
    expect(() => createGateway({ routes: [] }, { closeTimeoutMs: -1 } as never)).toThrow(
      ConfigError,
    );
    expect(() =>
      createGateway({ routes: [{ path: '/a', upstream: { service: 'users' } }] }),
    ).toThrow(/routes\[0\]\.upstream\.service: needs the resolver option/);
    expect(() =>
      createGateway({
        routes: [
          { name: 'x', path: '/a', upstream: { urls: ['http://a'] } },
          { name: 'x', path: '/b', upstream: { urls: ['http://b'] } },
        ],
      }),
    ).toThrow(/routes\[1\]\.name: duplicate route name x/);
  });

  it('closes cleanly without ever listening', async () => {
    const g = createGateway({
      routes: [{ path: '/', upstream: { urls: ['http://127.0.0.1:1'] } }],
    });
    await expect(g.close()).resolves.toBeUndefined();
    expect(() => g.reload({ routes: [] })).toThrow(/closed/);
  });

  it('a config that fails to build after its edge and first routes exist releases them', async () => {
    let watching = 0;
    const resolver: Resolver = {
      resolve: async (): Promise<Instance[]> => [],
      watch: () => {
        watching++;
        return () => {
          watching--;
        };
      },
      close: async () => {},
    };
    const config = {
      redis: { url: 'redis://127.0.0.1:1' },
      routes: [
        { name: 'a', path: '/a', upstream: { service: 'svc' } },
        // Fails in the stage builder: the Redis store counts in whole seconds.
        {
          name: 'b',
          path: '/b',
          upstream: { service: 'svc' },
          rateLimit: { limit: 1, windowMs: 1500, store: 'redis' },
        },
      ],
    };
    expect(() => createGateway(config, { resolver })).toThrow(/routes\[1\]\.rateLimit\.windowMs/);
    await new Promise((r) => setImmediate(r));
    expect(watching).toBe(0);
    const gateway = createGateway({ routes: [] }, { resolver });
    expect(() => gateway.reload(config)).toThrow(ConfigError);
    await new Promise((r) => setImmediate(r));
    expect(watching).toBe(0);
    await gateway.close();
  });
});
