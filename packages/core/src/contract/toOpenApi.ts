import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { configError, parseOptions } from '../options.js';
import type { EndpointDefinition, EndpointMap } from './endpoint.js';
import { isStreamResponse, isZodSchema } from './stream.js';

/** Options of {@link toOpenApi}. */
export interface OpenApiOptions {
  readonly title: string;
  readonly version: string;
  readonly description?: string;
  readonly servers?: readonly { readonly url: string; readonly description?: string }[];
}

/** A JSON Schema object, as zod's `z.toJSONSchema` writes it. */
export type JsonSchema = Record<string, unknown>;

/** An OpenAPI 3.1 document (the parts Trellis writes). */
export interface OpenApiDocument {
  openapi: '3.1.1';
  info: { title: string; version: string; description?: string };
  servers?: { url: string; description?: string }[];
  paths: Record<string, Record<string, unknown>>;
  components: { schemas: Record<string, JsonSchema> };
}

const optionsSchema = z.strictObject({
  title: z.string().min(1),
  version: z.string().min(1),
  description: z.string().optional(),
  servers: z
    .array(z.strictObject({ url: z.string().min(1), description: z.string().optional() }))
    .optional(),
});

const PROBLEM_REF = { $ref: '#/components/schemas/Problem' };

/** RFC 9457 problem details with Trellis' members (docs/problem-details.md). */
const PROBLEM_SCHEMA: JsonSchema = {
  type: 'object',
  description: 'RFC 9457 problem details (application/problem+json); see docs/problem-details.md.',
  properties: {
    type: { type: 'string', description: 'urn:trellis:error:<code>' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    code: {
      type: 'string',
      description: 'The stable Trellis error code, e.g. TRELLIS_REQUEST_INVALID.',
    },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { path: { type: 'string' }, message: { type: 'string' } },
        required: ['path', 'message'],
      },
    },
  },
  required: ['type', 'title', 'status', 'code'],
};

const problemResponse = (description: string) => ({
  description,
  content: { 'application/problem+json': { schema: PROBLEM_REF } },
});

/**
 * Builds an OpenAPI 3.1 document from endpoint definitions with zod 4's own
 * `z.toJSONSchema` in input mode (the wire shape): paths from templates (`/items/:id` becomes
 * `/items/{id}`), path, query and header parameters, the JSON request body, responses per status
 * (a single schema is documented as 200), streams as `text/event-stream` or
 * `application/x-ndjson`, and problem+json error answers. Operation ids are the endpoint names;
 * descriptions come from `.describe()` / `.meta()` and the endpoint's `summary`/`description`.
 * Refinements and transforms cannot be expressed in JSON Schema: the document shows the shape
 * before them.
 *
 * @example
 * ```ts
 * import { defineEndpoints, toOpenApi } from '@trellis/core';
 * import { z } from 'zod';
 *
 * const api = defineEndpoints({
 *   getItem: { method: 'GET', path: '/items/:id', response: z.object({ id: z.string() }) },
 * });
 * const doc = toOpenApi(api, { title: 'Items', version: '1.0.0' });
 * console.log(Object.keys(doc.paths)); // ['/items/{id}']
 * ```
 */
export function toOpenApi(endpoints: EndpointMap, options: OpenApiOptions): OpenApiDocument {
  const o = parseOptions(optionsSchema, options, 'toOpenApi');
  const components: Record<string, JsonSchema> = { Problem: PROBLEM_SCHEMA };
  const paths: OpenApiDocument['paths'] = {};
  for (const [name, def] of Object.entries(endpoints)) {
    if (typeof def !== 'object' || def === null || typeof def.path !== 'string') {
      throw configError('toOpenApi', [
        { path: `endpoints.${name}`, message: 'must be an endpoint definition' },
      ]);
    }
    const path = def.path.replace(/:([A-Za-z0-9_$]+)/g, '{$1}');
    paths[path] ??= {};
    const item = paths[path];
    item[def.method.toLowerCase()] = operation(name, def, new Hoister(components, name));
  }
  const doc: OpenApiDocument = {
    openapi: '3.1.1',
    info: {
      title: o.title,
      version: o.version,
      ...(o.description !== undefined && { description: o.description }),
    },
    paths,
    components: { schemas: components },
  };
  if (o.servers !== undefined) doc.servers = o.servers.map((s) => ({ ...s }));
  return doc;
}

/** Converts schemas and moves their `$defs` into `components.schemas` under unique names. */
class Hoister {
  #n = 0;
  constructor(
    readonly components: Record<string, JsonSchema>,
    readonly prefix: string,
  ) {}

  convert(schema: z.ZodType): JsonSchema {
    const json = z.toJSONSchema(schema, {
      io: 'input',
      unrepresentable: 'any',
      target: 'draft-2020-12',
    }) as JsonSchema;
    delete json.$schema;
    const defs = (json.$defs ?? {}) as Record<string, JsonSchema>;
    delete json.$defs;
    // A schema that refers to itself at the root says `$ref: '#'`, which in an OpenAPI document
    // would mean the whole document: it moves into components too.
    const selfRef = JSON.stringify(json).includes('"$ref":"#"');
    if (Object.keys(defs).length === 0 && !selfRef) return json;
    const names = new Map<string, string>();
    const claim = (key: string) => {
      let name = `${this.prefix}_${key.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
      while (name in this.components) name = `${name}_${++this.#n}`;
      this.components[name] = {};
      return name;
    };
    for (const key of Object.keys(defs))
      names.set(`#/$defs/${key}`, `#/components/schemas/${claim(key)}`);
    if (selfRef) names.set('#', `#/components/schemas/${claim('self')}`);
    const rewrite = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(rewrite);
      if (v === null || typeof v !== 'object') return v;
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        out[k] = k === '$ref' && typeof x === 'string' ? (names.get(x) ?? x) : rewrite(x);
      }
      return out;
    };
    const target = (ref: string) => ref.slice('#/components/schemas/'.length);
    for (const [key, def] of Object.entries(defs)) {
      this.components[target(names.get(`#/$defs/${key}`) as string)] = rewrite(def) as JsonSchema;
    }
    if (selfRef) {
      const ref = names.get('#') as string;
      this.components[target(ref)] = rewrite(json) as JsonSchema;
      return { $ref: ref };
    }
    return rewrite(json) as JsonSchema;
  }
}

function operation(name: string, def: EndpointDefinition, h: Hoister): Record<string, unknown> {
  const op: Record<string, unknown> = { operationId: name };
  if (def.summary !== undefined) op.summary = def.summary;
  if (def.description !== undefined) op.description = def.description;
  const parameters: Record<string, unknown>[] = [];
  const pathNames = [...def.path.matchAll(/:([A-Za-z0-9_$]+)/g)].map((m) => m[1] as string);
  const paramsJson = def.params !== undefined ? h.convert(def.params) : undefined;
  const paramProps = (paramsJson?.properties ?? {}) as Record<string, JsonSchema>;
  for (const p of pathNames) {
    parameters.push(param(p, 'path', true, paramProps[p] ?? { type: 'string' }));
  }
  for (const [where, schema] of [
    ['query', def.query],
    ['header', def.headers],
  ] as const) {
    if (schema === undefined) continue;
    const json = h.convert(schema);
    const props = (json.properties ?? {}) as Record<string, JsonSchema>;
    const required = new Set((json.required ?? []) as string[]);
    for (const [key, s] of Object.entries(props)) {
      parameters.push(
        param(where === 'header' ? key.toLowerCase() : key, where, required.has(key), s),
      );
    }
  }
  if (parameters.length > 0) op.parameters = parameters;
  if (def.body !== undefined) {
    const bodyJson = h.convert(def.body);
    op.requestBody = {
      required: !def.body.safeParse(undefined).success,
      ...(typeof bodyJson.description === 'string' && { description: bodyJson.description }),
      content: { 'application/json': { schema: bodyJson } },
    };
  }
  const responses: Record<string, unknown> = {};
  const r = def.response;
  if (isStreamResponse(r)) {
    const item = h.convert(r.schema);
    const sse = r.stream === 'sse';
    responses['200'] = {
      description: sse
        ? "A stream of Server-Sent Events; each event's data is one JSON value of the schema."
        : 'A stream of newline-delimited JSON values, one per line, each of the schema.',
      content: { [r.contentType]: { schema: item, 'x-trellis-stream': r.stream } },
    };
  } else if (isZodSchema(r)) {
    responses['200'] = response(h.convert(r), 200);
  } else {
    for (const [status, schema] of Object.entries(r)) {
      responses[status] = response(h.convert(schema as z.ZodType), Number(status));
    }
  }
  const hasInput =
    def.params !== undefined ||
    def.query !== undefined ||
    def.body !== undefined ||
    def.headers !== undefined;
  if (hasInput && responses['400'] === undefined) {
    responses['400'] = problemResponse('The request failed its schema: `errors` names each field.');
  }
  if (def.body !== undefined) {
    responses['413'] ??= problemResponse('The body is larger than the limit.');
    responses['415'] ??= problemResponse('The body is not application/json.');
  }
  responses['500'] ??= problemResponse('An unexpected error (generic detail).');
  responses.default = problemResponse('Any other error, as problem details.');
  op.responses = responses;
  return op;
}

function param(name: string, where: string, required: boolean, schema: JsonSchema) {
  const out: Record<string, unknown> = { name, in: where, required, schema };
  if (typeof schema.description === 'string') out.description = schema.description;
  return out;
}

function response(schema: JsonSchema, status: number) {
  const description =
    typeof schema.description === 'string'
      ? schema.description
      : status < 300
        ? 'Success'
        : `Status ${status}`;
  if (status === 204 || status === 304) return { description };
  return { description, content: { 'application/json': { schema } } };
}
