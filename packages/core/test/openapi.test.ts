import { validate } from '@readme/openapi-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import fc from 'fast-check';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { defineEndpoints } from '../src/contract/endpoint.js';
import type { JsonSchema, OpenApiDocument } from '../src/contract/toOpenApi.js';
import { FLAVOURS, type Served, startServed } from './serveHarness.js';

// Schemas JSON Schema can represent (no refinements), so "the document allows it" and "the
// server accepts it" must agree.
const api = defineEndpoints({
  createOrder: {
    method: 'POST',
    path: '/shops/:shop/orders',
    params: z.object({ shop: z.string().min(2).max(12) }),
    query: z.object({
      limit: z.coerce.number().int().min(1).max(100).optional(),
      tag: z.array(z.enum(['red', 'blue'])).optional(),
    }),
    body: z.object({
      sku: z.string().min(1).max(8),
      qty: z.number().int().min(1).max(5),
      note: z.string().max(10).optional(),
      kind: z.enum(['pickup', 'delivery']),
    }),
    response: { 201: z.object({ ok: z.literal(true) }) },
  },
});

const handlers = { createOrder: () => ({ status: 201, body: { ok: true } }) };

interface Candidate {
  shop: string;
  limit: number | undefined;
  tag: string[] | undefined;
  body: Record<string, unknown>;
}

/** Mostly values the schema allows, sometimes anything of the wider arbitrary. */
const mostly = <T>(valid: fc.Arbitrary<T>, wide: fc.Arbitrary<T>) =>
  fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: wide, weight: 1 });

const candidate: fc.Arbitrary<Candidate> = fc.record({
  shop: mostly(
    fc.string({ minLength: 2, maxLength: 12 }),
    fc.string({ minLength: 1, maxLength: 14 }),
  ).filter((s) => s !== '.' && s !== '..'),
  limit: fc.option(mostly(fc.integer({ min: 1, max: 100 }), fc.integer({ min: -2, max: 120 })), {
    nil: undefined,
  }),
  tag: fc.option(
    fc.array(mostly(fc.constantFrom('red', 'blue'), fc.constantFrom('red', 'blue', 'green')), {
      maxLength: 3,
    }),
    { nil: undefined },
  ),
  body: fc.record(
    {
      sku: mostly<unknown>(
        fc.string({ minLength: 1, maxLength: 8 }),
        fc.oneof(fc.string({ maxLength: 10 }), fc.integer()),
      ),
      qty: mostly<unknown>(
        fc.integer({ min: 1, max: 5 }),
        fc.double({ min: 0, max: 6, noNaN: true }),
      ),
      note: mostly(fc.string({ maxLength: 10 }), fc.string({ maxLength: 12 })),
      kind: mostly(fc.constantFrom('pickup', 'delivery'), fc.constantFrom('pickup', 'drone')),
    },
    { requiredKeys: ['sku', 'qty'] },
  ),
});

describe.each(FLAVOURS)('the published OpenAPI document on %s', (flavour) => {
  let served: Served;
  let doc: OpenApiDocument;
  beforeAll(async () => {
    served = await startServed(flavour, api, handlers, {
      openapi: { path: '/openapi.json', title: 'Orders', version: '1.0.0' },
    });
    const res = await request(`${served.base}/openapi.json`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    doc = (await res.body.json()) as OpenApiDocument;
  });
  afterAll(() => served.close());

  it('is valid OpenAPI 3.1', async () => {
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(doc.info).toEqual({ title: 'Orders', version: '1.0.0' });
  });

  it('allows exactly the requests the server accepts (generated inputs)', async () => {
    const op = doc.paths['/shops/{shop}/orders']?.post as {
      parameters: { name: string; in: string; required: boolean; schema: JsonSchema }[];
      requestBody: { content: { 'application/json': { schema: JsonSchema } } };
    };
    const ajv = new Ajv2020({ strict: false });
    const check = (schema: JsonSchema, value: unknown) => ajv.validate(schema, value) as boolean;
    const param = (name: string) =>
      op.parameters.find((p) => p.name === name) as (typeof op.parameters)[number];
    const bodySchema = op.requestBody.content['application/json'].schema;
    const seen = { allowed: 0, refused: 0 };
    await fc.assert(
      fc.asyncProperty(candidate, async (c) => {
        const allowed =
          check(param('shop').schema, c.shop) &&
          (c.limit === undefined || check(param('limit').schema, c.limit)) &&
          (c.tag === undefined || check(param('tag').schema, c.tag)) &&
          check(bodySchema, c.body);
        const q = new URLSearchParams();
        if (c.limit !== undefined) q.append('limit', String(c.limit));
        for (const t of c.tag ?? []) q.append('tag', t);
        const qs = q.size > 0 ? `?${q}` : '';
        const res = await request(
          `${served.base}/shops/${encodeURIComponent(c.shop)}/orders${qs}`,
          {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify(c.body),
          },
        );
        const text = await res.body.text();
        seen[allowed ? 'allowed' : 'refused']++;
        if (allowed) expect({ status: res.statusCode, text }).toMatchObject({ status: 201 });
        else expect({ status: res.statusCode, text }).toMatchObject({ status: 400 });
      }),
      { seed: 19, numRuns: 80 },
    );
    // The generator reaches both sides of the contract.
    expect(seen.allowed).toBeGreaterThan(5);
    expect(seen.refused).toBeGreaterThan(5);
  });
});
