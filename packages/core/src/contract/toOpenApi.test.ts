import { validate } from '@readme/openapi-parser';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { defineEndpoints } from './endpoint.js';
import { ndjson, sse } from './stream.js';
import { toOpenApi } from './toOpenApi.js';

// biome-ignore lint/suspicious/noExplicitAny: walking a generated JSON document
type Json = any;

const Item = z
  .object({
    id: z.string().describe('The item id'),
    name: z.string(),
    price: z.number().nonnegative(),
    addedAt: z.iso.datetime().transform((s) => new Date(s)),
  })
  .meta({ description: 'An item for sale' });
const Node: z.ZodType<{ name: string; children: unknown[] }> = z.object({
  name: z.string(),
  get children() {
    return z.array(Node);
  },
});

const api = defineEndpoints({
  getItem: {
    method: 'GET',
    path: '/items/:id',
    summary: 'Read one item',
    params: z.object({ id: z.string().describe('Item id, digits') }),
    query: z.object({ expand: z.enum(['parts']).optional(), tag: z.array(z.string()).optional() }),
    headers: z.object({ 'X-Tenant': z.string() }),
    response: { 200: Item, 404: z.object({ error: z.literal('not_found') }) },
  },
  createItem: { method: 'POST', path: '/items', body: Item.omit({ id: true }), response: Item },
  deleteItem: { method: 'DELETE', path: '/items/:id', response: { 204: z.undefined() } },
  tree: { method: 'GET', path: '/tree', response: Node },
  watch: {
    method: 'GET',
    path: '/items/:id/events',
    response: sse(z.object({ price: z.number() })),
  },
  export: { method: 'GET', path: '/export', response: ndjson(Item) },
});

describe('toOpenApi', () => {
  const doc = toOpenApi(api, {
    title: 'Items',
    version: '1.2.3',
    servers: [{ url: 'http://localhost:3000' }],
  });

  it('writes a document a real OpenAPI 3.1 validator accepts', async () => {
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid ? [] : result.errors).toEqual([]);
    expect(doc.openapi).toBe('3.1.1');
    expect(doc.info).toEqual({ title: 'Items', version: '1.2.3' });
    expect(doc.servers).toEqual([{ url: 'http://localhost:3000' }]);
  });

  it('turns templates into OpenAPI paths and names operations after endpoints', () => {
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/export',
      '/items',
      '/items/{id}',
      '/items/{id}/events',
      '/tree',
    ]);
    const get = doc.paths['/items/{id}']?.get as Record<string, unknown>;
    expect(get.operationId).toBe('getItem');
    expect(get.summary).toBe('Read one item');
    const del = doc.paths['/items/{id}']?.delete as { operationId: string } | undefined;
    expect(del?.operationId).toBe('deleteItem');
  });

  it('documents path, query and header parameters with their descriptions', () => {
    const get = doc.paths['/items/{id}']?.get as { parameters: Record<string, unknown>[] };
    expect(get.parameters).toEqual([
      {
        name: 'id',
        in: 'path',
        required: true,
        schema: { type: 'string', description: 'Item id, digits' },
        description: 'Item id, digits',
      },
      { name: 'expand', in: 'query', required: false, schema: { type: 'string', enum: ['parts'] } },
      {
        name: 'tag',
        in: 'query',
        required: false,
        schema: { type: 'array', items: { type: 'string' } },
      },
      { name: 'x-tenant', in: 'header', required: true, schema: { type: 'string' } },
    ]);
  });

  it('documents the wire (input) shape of bodies and responses per status, and problem errors', () => {
    const post = doc.paths['/items']?.post as Json;
    const body = post.requestBody.content['application/json'].schema;
    expect(body.properties.addedAt).toMatchObject({ type: 'string', format: 'date-time' });
    expect(body.required).toEqual(['name', 'price', 'addedAt']);
    expect(post.requestBody.required).toBe(true);
    expect(post.responses['200'].description).toBe('An item for sale');
    expect(post.responses['200'].content['application/json'].schema.properties.id.description).toBe(
      'The item id',
    );
    for (const status of ['400', '413', '415', '500', 'default']) {
      expect(post.responses[status].content['application/problem+json'].schema).toEqual({
        $ref: '#/components/schemas/Problem',
      });
    }
    const get = doc.paths['/items/{id}']?.get as Json;
    expect(Object.keys(get.responses).sort()).toEqual(['200', '400', '404', '500', 'default']);
    const del = doc.paths['/items/{id}']?.delete as Json;
    expect(del.responses['204']).toEqual({ description: 'Success' });
  });

  it('hoists recursive definitions into components', () => {
    const tree = doc.paths['/tree']?.get as Json;
    const schema = tree.responses['200'].content['application/json'].schema;
    const ref = JSON.stringify(schema).match(/#\/components\/schemas\/[\w.-]+/)?.[0];
    expect(ref).toBeDefined();
    expect(doc.components.schemas[(ref as string).split('/').pop() as string]).toBeDefined();
  });

  it('shows streams as text/event-stream and application/x-ndjson with the item schema', () => {
    const watch = doc.paths['/items/{id}/events']?.get as Json;
    expect(watch.responses['200'].content['text/event-stream'].schema).toMatchObject({
      type: 'object',
      properties: { price: { type: 'number' } },
    });
    const exp = doc.paths['/export']?.get as Json;
    expect(exp.responses['200'].content['application/x-ndjson'].schema.type).toBe('object');
  });

  it('validates its options', () => {
    expect(() => toOpenApi(api, { title: '', version: '1' })).toThrow(ConfigError);
    expect(() => toOpenApi(api, { title: '', version: '1' })).toThrow(/title/);
  });
});
