import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { defineEndpoints, type EndpointMethod } from './endpoint.js';
import { isStreamResponse, ndjson, type SseEvent, sse } from './stream.js';

const Price = z.object({ cents: z.number(), at: z.iso.datetime().transform((s) => new Date(s)) });
const api = defineEndpoints({
  prices: { method: 'GET', path: '/prices/:sku', response: sse(Price) },
  dump: { method: 'GET', path: '/dump', response: ndjson(z.number()) },
});

describe('sse and ndjson', () => {
  it('declare streamed responses the client types as AsyncIterables of parsed items', () => {
    type Prices = EndpointMethod<typeof api.prices>;
    expectTypeOf<ReturnType<Prices>>().toEqualTypeOf<
      AsyncIterable<SseEvent<{ cents: number; at: Date }>>
    >();
    expectTypeOf<Parameters<Prices>[0]['params']>().toEqualTypeOf<{
      readonly sku: string | number;
    }>();
    expectTypeOf<ReturnType<EndpointMethod<typeof api.dump>>>().toEqualTypeOf<
      AsyncIterable<number>
    >();
  });

  it('are recognised at run time and carry their media type', () => {
    expect(isStreamResponse(api.prices.response)).toBe(true);
    expect(isStreamResponse(Price)).toBe(false);
    expect(isStreamResponse({ 200: Price })).toBe(false);
    expect(api.prices.response.contentType).toBe('text/event-stream');
    expect(api.dump.response.contentType).toBe('application/x-ndjson');
  });
});
