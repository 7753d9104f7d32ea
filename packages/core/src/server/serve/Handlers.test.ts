import type { IncomingHttpHeaders } from 'node:http';
import type { FastifyRequest } from 'fastify';
import { describe, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineEndpoints } from '../../contract/endpoint.js';
import { ndjson, sse } from '../../contract/stream.js';
import { type ExpressServeRequest, serve } from '../../express.js';
import { serve as serveFastify } from '../../fastify.js';
import type { HandlerInput, HandlerResult } from './Handlers.js';

const Item = z.object({ id: z.string(), at: z.iso.datetime().transform((s) => new Date(s)) });
const api = defineEndpoints({
  getItem: {
    method: 'GET',
    path: '/items/:id',
    params: z.object({ id: z.coerce.number() }),
    response: { 200: Item, 404: z.object({ error: z.string() }) },
  },
  create: {
    method: 'POST',
    path: '/items',
    body: z.object({ name: z.string() }),
    query: z.object({ dry: z.enum(['1', '0']).transform((v) => v === '1') }),
    response: Item,
  },
  plain: { method: 'GET', path: '/orders/:orderId/lines/:line', response: z.string() },
  events: { method: 'GET', path: '/events', response: sse(z.object({ n: z.number() })) },
  lines: { method: 'GET', path: '/lines', response: ndjson(z.number()) },
});

describe('serve handler types', () => {
  it('gives handlers the parsed (output) types and the framework request', () => {
    expectTypeOf<HandlerInput<typeof api.getItem, unknown>['params']>().toEqualTypeOf<{
      id: number;
    }>();
    expectTypeOf<HandlerInput<typeof api.create, unknown>['query']>().toEqualTypeOf<{
      dry: boolean;
    }>();
    expectTypeOf<HandlerInput<typeof api.create, unknown>['body']>().toEqualTypeOf<{
      name: string;
    }>();
    expectTypeOf<HandlerInput<typeof api.plain, unknown>['params']>().toEqualTypeOf<{
      readonly orderId: string;
      readonly line: string;
    }>();
    expectTypeOf<
      HandlerInput<typeof api.plain, unknown>['headers']
    >().toEqualTypeOf<IncomingHttpHeaders>();
    expectTypeOf<
      HandlerInput<typeof api.plain, FastifyRequest>['request']
    >().toEqualTypeOf<FastifyRequest>();
  });

  it('takes answers in wire shape (z.input): a status map exactly, a single schema any 2xx', () => {
    type GetAnswer = HandlerResult<typeof api.getItem>;
    expectTypeOf<{ status: 200; body: { id: string; at: string } }>().toExtend<GetAnswer>();
    expectTypeOf<{ status: 404; body: { error: string } }>().toExtend<GetAnswer>();
    expectTypeOf<{ status: 201; body: { id: string; at: string } }>().not.toExtend<GetAnswer>();
    expectTypeOf<{ status: 200; body: { id: string; at: Date } }>().not.toExtend<GetAnswer>();
    type CreateAnswer = HandlerResult<typeof api.create>;
    expectTypeOf<{ status: 201; body: { id: string; at: string } }>().toExtend<CreateAnswer>();
    expectTypeOf<{ status: 400; body: { id: string; at: string } }>().not.toExtend<CreateAnswer>();
    expectTypeOf<
      Extract<HandlerResult<typeof api.events>, { status: 200 }>['body']
    >().toEqualTypeOf<
      AsyncIterable<{
        readonly data: { n: number };
        readonly id?: string;
        readonly event?: string;
        readonly retry?: number;
      }>
    >();
    expectTypeOf<Extract<HandlerResult<typeof api.lines>, { status: 200 }>['body']>().toEqualTypeOf<
      AsyncIterable<number>
    >();
  });

  it('rejects missing handlers, extra handlers and wrong answers at compile time', () => {
    const small = defineEndpoints({
      a: {
        method: 'GET',
        path: '/a/:id',
        response: { 200: z.object({ n: z.number() }), 404: z.null() },
      },
    });
    const ok = () =>
      serve(small, {
        a: async ({ params, request }) => {
          expectTypeOf(params.id).toEqualTypeOf<string>();
          expectTypeOf(request).toEqualTypeOf<ExpressServeRequest>();
          return params.id === '0' ? { status: 404, body: null } : { status: 200, body: { n: 1 } };
        },
      });
    const okFastify = () =>
      serveFastify(small, {
        a: ({ request }) => ({ status: 200, body: { n: request.url.length } }),
      });
    // @ts-expect-error a handler is missing
    const missing = () => serve(small, {});
    const extra = () =>
      serve(small, {
        a: () => ({ status: 404, body: null }),
        // @ts-expect-error no endpoint of this name
        b: () => ({ status: 200, body: null }),
      });
    const wrongStatus = () =>
      serve(small, {
        // @ts-expect-error 201 is not declared
        a: () => ({ status: 201, body: { n: 1 } }),
      });
    const wrongBody = () =>
      serveFastify(small, {
        // @ts-expect-error the body does not match the schema
        a: async () => ({ status: 200, body: { n: 'one' } }),
      });
    expectTypeOf(ok).toBeFunction();
    expectTypeOf(okFastify).toBeFunction();
    expectTypeOf(missing).toBeFunction();
    expectTypeOf(extra).toBeFunction();
    expectTypeOf(wrongStatus).toBeFunction();
    expectTypeOf(wrongBody).toBeFunction();
  });
});
