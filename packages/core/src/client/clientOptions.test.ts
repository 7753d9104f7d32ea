import fc from 'fast-check';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { z } from 'zod';
import { z as zod } from 'zod';
import type { Resolver } from '../discovery.js';
import { ConfigError } from '../errors.js';
import { parseOptions } from '../options.js';
import { MAX_DELAY_MS } from '../time/duration.js';
import {
  type BaseUrlClientOptions,
  type ClientOptions,
  clientOptionsSchema,
  type ServiceClientOptions,
} from './clientOptions.js';
import type { EndpointMap } from './endpoint.js';

type SchemaKeys = keyof z.input<typeof clientOptionsSchema>;
type Keys<T> = T extends unknown ? keyof T : never;

describe('createClient options: one declaration', () => {
  it('the public types have exactly the schema keys', () => {
    expectTypeOf<Keys<ClientOptions<EndpointMap>>>().toEqualTypeOf<SchemaKeys>();
  });

  it('field types follow the schema', () => {
    type B = BaseUrlClientOptions<EndpointMap>;
    expectTypeOf<B['baseUrl']>().toEqualTypeOf<string>();
    expectTypeOf<B['timeoutMs']>().toEqualTypeOf<number | undefined>();
    expectTypeOf<B['validateResponse']>().toEqualTypeOf<
      boolean | { sampleRate: number } | undefined
    >();
    type S = ServiceClientOptions<EndpointMap>;
    expectTypeOf<S['resolver']>().toEqualTypeOf<Resolver>();
    expectTypeOf<S['baseUrl']>().toEqualTypeOf<undefined>();
  });

  it('refuses a mix of both targets and unknown keys, at compile time', () => {
    const endpoints = {};
    // @ts-expect-error: baseUrl and service together
    const both: ClientOptions<EndpointMap> = { baseUrl: 'http://x', service: 's', endpoints };
    // @ts-expect-error: a typo is not an option
    const typo: ClientOptions<EndpointMap> = { baseUrl: 'http://x', endpoints, timeoutMS: 1 };
    expect([both, typo]).toHaveLength(2);
  });

  it('the schema refuses the same at run time, naming the field', () => {
    const endpoints = { get: { method: 'GET', path: '/', response: zod.unknown() } };
    const parse = (o: unknown) => parseOptions(clientOptionsSchema, o, 'createClient');
    expect(() => parse({ baseUrl: 'http://x', endpoints, timeoutMS: 1 })).toThrow(/timeoutMS/);
    expect(() => parse({ baseUrl: 'http://x', endpoints, timeoutMs: 2 ** 31 })).toThrow(
      ConfigError,
    );
    expect(() => parse({ baseUrl: 'http://x', endpoints, timeoutMs: '300' })).toThrow(
      /expected a number of milliseconds/,
    );
    expect(parse({ baseUrl: 'http://x', endpoints }).timeoutMs).toBe(10_000);
  });

  it('property: timeoutMs and keepAliveTimeoutMs are accepted exactly when a timer can hold them', () => {
    const endpoints = { get: { method: 'GET', path: '/', response: zod.unknown() } };
    fc.assert(
      fc.property(
        fc.oneof(
          fc.double(),
          fc.integer({ min: MAX_DELAY_MS - 3, max: MAX_DELAY_MS + 3 }),
          fc.constantFrom(0, 1, 2 ** 31, 2 ** 32, Number.MAX_SAFE_INTEGER),
        ),
        (ms) => {
          const fits = Number.isFinite(ms) && ms > 0 && ms <= MAX_DELAY_MS;
          const accepts = (o: object) =>
            clientOptionsSchema.safeParse({ baseUrl: 'http://x', endpoints, ...o }).success;
          expect(accepts({ timeoutMs: ms })).toBe(fits);
          expect(accepts({ keepAliveTimeoutMs: ms })).toBe(fits && Number.isInteger(ms));
        },
      ),
      { seed: 17, numRuns: 300 },
    );
  });
});
