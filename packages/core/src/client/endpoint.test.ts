import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { createClient } from './createClient.js';
import {
  defineEndpoints,
  type EndpointInput,
  type EndpointResult,
  endpoint,
  type PathParamNames,
  type ResponseHeaders,
} from './endpoint.js';

const Item = z.object({ id: z.string(), name: z.string(), price: z.number() });
const NotFound = z.object({ error: z.literal('not_found') });

const api = defineEndpoints({
  getItem: { method: 'GET', path: '/items/:id', response: Item },
  findItem: {
    method: 'GET',
    path: '/items/:id/v/:version',
    response: { 200: Item, 404: NotFound },
  },
  listItems: {
    method: 'GET',
    path: '/items',
    query: z.object({ limit: z.number().int().optional(), tag: z.array(z.string()).optional() }),
    response: z.array(Item),
  },
  createItem: {
    method: 'POST',
    path: '/items',
    body: Item.omit({ id: true }),
    headers: z.object({ 'idempotency-key': z.string() }),
    response: Item,
  },
  typedParams: {
    method: 'GET',
    path: '/orders/:orderId',
    params: z.object({ orderId: z.coerce.number().int() }),
    response: z.object({ total: z.number().transform((n) => BigInt(n)) }),
  },
  health: { method: 'GET', path: '/health', response: z.object({ status: z.string() }) },
});

describe('endpoint types', () => {
  it('extracts :name segments from a path template', () => {
    expectTypeOf<PathParamNames<'/a/:x/b/:y'>>().toEqualTypeOf<'x' | 'y'>();
    expectTypeOf<PathParamNames<'/a/b'>>().toEqualTypeOf<never>();
  });

  it('infers params from the path when there is no params schema', () => {
    type In = EndpointInput<(typeof api)['getItem']>;
    expectTypeOf<In['params']>().toEqualTypeOf<{ readonly id: string | number }>();
    expectTypeOf<EndpointResult<(typeof api)['getItem']>>().toEqualTypeOf<{
      id: string;
      name: string;
      price: number;
    }>();
  });

  it('makes a status map a union discriminated by status', () => {
    type Out = EndpointResult<(typeof api)['findItem']>;
    expectTypeOf<Out>().toEqualTypeOf<
      | {
          readonly status: 200;
          readonly body: z.output<typeof Item>;
          readonly headers: ResponseHeaders;
        }
      | {
          readonly status: 404;
          readonly body: { error: 'not_found' };
          readonly headers: ResponseHeaders;
        }
    >();
  });

  it('uses schema input types for params, query, body and headers, output types for results', () => {
    type Create = EndpointInput<(typeof api)['createItem']>;
    expectTypeOf<Create['body']>().toEqualTypeOf<{ name: string; price: number }>();
    expectTypeOf<Create['headers']>().toExtend<{ 'idempotency-key': string }>();
    type Typed = EndpointInput<(typeof api)['typedParams']>;
    expectTypeOf<Typed['params']>().toEqualTypeOf<{ orderId: unknown }>();
    expectTypeOf<EndpointResult<(typeof api)['typedParams']>>().toEqualTypeOf<{
      total: bigint;
    }>();
  });

  it('gives each endpoint a typed method, with an optional argument when nothing is required', () => {
    const client = createClient({ baseUrl: 'http://127.0.0.1:1', endpoints: api });
    expectTypeOf(client.getItem).parameter(0).toExtend<{ params: { id: string | number } }>();
    expectTypeOf(client.getItem).returns.resolves.toEqualTypeOf<z.output<typeof Item>>();
    expectTypeOf(client.health).parameters.toEqualTypeOf<
      [input?: EndpointInput<(typeof api)['health']>]
    >();
    expectTypeOf(client.listItems).returns.resolves.toEqualTypeOf<z.output<typeof Item>[]>();
    expectTypeOf(client.close).returns.resolves.toBeVoid();
    const noParams = () =>
      // @ts-expect-error: params are required by the path template
      client.getItem();
    const bad = () =>
      // @ts-expect-error: body is typed by the endpoint's body schema
      client.createItem({ body: { name: 1 }, headers: { 'idempotency-key': 'k' } });
    const missing = () =>
      // @ts-expect-error: the declared header is required
      client.createItem({ body: { name: 'a', price: 1 } });
    const noQuery = () =>
      // @ts-expect-error: getItem declares no query schema
      client.getItem({ params: { id: 1 }, query: { x: 1 } });
    expect([noParams, bad, missing, noQuery]).toHaveLength(4);
    return client.close();
  });

  it('narrows a status union without casts in user code', async () => {
    const client = createClient({
      baseUrl: 'http://127.0.0.1:1',
      endpoints: {
        find: endpoint({ method: 'GET', path: '/f/:id', response: { 200: Item, 404: NotFound } }),
      },
    });
    const use = async () => {
      const res = await client.find({ params: { id: 'a' } });
      if (res.status === 200) expectTypeOf(res.body.price).toEqualTypeOf<number>();
      else expectTypeOf(res.body.error).toEqualTypeOf<'not_found'>();
    };
    expect(typeof use).toBe('function');
    await client.close();
  });
});
