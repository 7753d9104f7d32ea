import type { z } from 'zod';
import type { EndpointDefinition, EndpointMap, HttpMethod } from '../../contract/endpoint.js';
import { isStreamResponse, isZodSchema, type StreamResponse } from '../../contract/stream.js';
import { toOpenApi } from '../../contract/toOpenApi.js';
import { ConfigError, type ConfigIssue } from '../../errors.js';
import { type Logger, silentLogger } from '../../Logger.js';
import { configError, parseOptions, toIssues } from '../../options.js';
import { type ParsedServeOptions, type ServeOptions, serveOptionsSchema } from './serveOptions.js';

const METHODS = new Set<string>(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
const NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

type AnyHandler = (input: never) => unknown;

/** One endpoint prepared for serving. */
export interface ServedEndpoint {
  readonly name: string;
  readonly method: HttpMethod;
  readonly path: string;
  readonly paramNames: readonly string[];
  readonly params: z.ZodType | undefined;
  readonly query: z.ZodType | undefined;
  readonly body: z.ZodType | undefined;
  readonly headers: z.ZodType | undefined;
  /** Query keys whose schema is an array (repeated keys allowed); others take one value. */
  readonly arrayKeys: ReadonlySet<string>;
  readonly single: z.ZodType | undefined;
  readonly byStatus: ReadonlyMap<number, z.ZodType> | undefined;
  readonly stream: StreamResponse | undefined;
  readonly handler: (input: unknown) => unknown;
}

/** The answer a handler gave, before it is checked. */
export interface HandlerAnswer {
  status: number;
  body: unknown;
  headers?: Record<string, string | number | readonly string[]>;
}

/** A contract compiled once for an adapter: endpoints, options, checks. */
export class Contract {
  readonly endpoints: readonly ServedEndpoint[];
  readonly options: ParsedServeOptions;
  readonly logger: Logger;
  readonly #validateAll: boolean;
  readonly #sampleRate: number;
  #credit = 0;
  #openApi: string | undefined;
  readonly #definitions: EndpointMap;

  constructor(
    component: string,
    endpoints: EndpointMap,
    handlers: unknown,
    options: ServeOptions | undefined,
  ) {
    this.options = parseOptions(serveOptionsSchema, options ?? {}, component);
    this.logger = this.options.logger ?? silentLogger;
    const v = this.options.validateResponse;
    this.#validateAll = v === true || (typeof v === 'object' && v.sampleRate >= 1);
    this.#sampleRate = typeof v === 'object' ? v.sampleRate : v ? 1 : 0;
    this.#definitions = endpoints;
    this.endpoints = compileAll(component, endpoints, handlers);
  }

  /** Deterministic sampling of response validation (same rule as the client). */
  shouldValidate(): boolean {
    if (this.#validateAll) return true;
    if (this.#sampleRate === 0) return false;
    this.#credit += this.#sampleRate;
    if (this.#credit < 1) return false;
    this.#credit -= 1;
    return true;
  }

  /** The OpenAPI document as JSON text, built on first use. */
  openApiText(): string {
    const o = this.options.openapi;
    if (o === undefined) return '{}';
    this.#openApi ??= JSON.stringify(
      toOpenApi(this.#definitions, {
        title: o.title,
        version: o.version,
        ...(o.servers !== undefined && { servers: o.servers }),
      }),
    );
    return this.#openApi;
  }

  /**
   * Checks a handler's answer against the contract. Returns the issues, or undefined when it
   * is fine (or not sampled). Logs every violation with the endpoint and fields.
   */
  checkAnswer(ep: ServedEndpoint, answer: unknown, validateBody = true): ConfigIssue[] | undefined {
    if (typeof answer !== 'object' || answer === null) {
      return this.#violation(ep, [
        { path: '(answer)', message: 'must be { status, body, headers? }' },
      ]);
    }
    const { status, body } = answer as HandlerAnswer;
    if (!Number.isInteger(status) || status < 100 || status > 599) {
      return this.#violation(ep, [
        { path: 'status', message: `${String(status)} is not an HTTP status` },
      ]);
    }
    let schema: z.ZodType | undefined;
    if (ep.stream !== undefined) {
      if (status === 204) return undefined;
      if (status !== 200) {
        return this.#violation(ep, [{ path: 'status', message: 'a stream answers 200 or 204' }]);
      }
      if (body === null || typeof body !== 'object' || !(Symbol.asyncIterator in body)) {
        return this.#violation(ep, [{ path: 'body', message: 'must be an async iterable' }]);
      }
      return undefined;
    }
    if (ep.single !== undefined) {
      if (status < 200 || status > 299) {
        return this.#violation(ep, [{ path: 'status', message: `${status} is not a 2xx status` }]);
      }
      schema = ep.single;
    } else {
      schema = ep.byStatus?.get(status);
      if (schema === undefined) {
        const declared = [...(ep.byStatus?.keys() ?? [])].join(', ');
        return this.#violation(ep, [
          { path: 'status', message: `${status} is not declared (declared: ${declared})` },
        ]);
      }
    }
    return validateBody ? this.checkBody(ep, schema, body) : undefined;
  }

  /** Validates an answer's body (when sampled); logs and returns the issues on a violation. */
  checkBody(ep: ServedEndpoint, schema: z.ZodType, body: unknown): ConfigIssue[] | undefined {
    if (!this.shouldValidate()) return undefined;
    const r = schema.safeParse(body);
    if (r.success) return undefined;
    return this.#violation(ep, prefixIssues('body', r.error));
  }

  /** Checks one streamed item; logs and returns the issues when it breaks the contract. */
  checkItem(ep: ServedEndpoint, item: unknown): ConfigIssue[] | undefined {
    const s = ep.stream as StreamResponse;
    const data = s.stream === 'sse' ? (item as { data?: unknown } | null)?.data : item;
    if (s.stream === 'sse' && (typeof item !== 'object' || item === null)) {
      return this.#violation(ep, [
        { path: 'item', message: 'an SSE item must be { data, id?, event? }' },
      ]);
    }
    if (!this.shouldValidate()) return undefined;
    const r = s.schema.safeParse(data);
    if (r.success) return undefined;
    return this.#violation(ep, prefixIssues(s.stream === 'sse' ? 'item.data' : 'item', r.error));
  }

  /** Logs a violation found elsewhere (e.g. by a Fastify serializer). */
  violation(ep: ServedEndpoint, issues: ConfigIssue[]): ConfigIssue[] {
    return this.#violation(ep, issues);
  }

  #violation(ep: ServedEndpoint, issues: ConfigIssue[]): ConfigIssue[] {
    this.logger.error(
      { endpoint: ep.name, method: ep.method, path: ep.path, issues },
      `serve: ${ep.name} answered outside its contract: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
    );
    return issues;
  }
}

/** zod issues as `{ path, message }`, each path under `prefix` (`body.name`, `query.limit`). */
export function prefixIssues(
  prefix: string,
  error: z.ZodError,
  out: ConfigIssue[] = [],
): ConfigIssue[] {
  for (const issue of toIssues(error)) {
    out.push({
      path: issue.path === '(root)' ? prefix : `${prefix}.${issue.path}`,
      message: issue.message,
    });
  }
  return out;
}

function compileAll(
  component: string,
  endpoints: EndpointMap,
  handlers: unknown,
): ServedEndpoint[] {
  const issues: ConfigIssue[] = [];
  if (typeof endpoints !== 'object' || endpoints === null) {
    issues.push({ path: 'endpoints', message: 'must be an object of endpoint definitions' });
  }
  if (typeof handlers !== 'object' || handlers === null) {
    issues.push({ path: 'handlers', message: 'must be an object with one handler per endpoint' });
  }
  if (issues.length > 0) throw contractError(component, issues);
  const h = handlers as Record<string, unknown>;
  const out: ServedEndpoint[] = [];
  const seen = new Map<string, string>();
  for (const name of Object.keys(endpoints)) {
    const def = endpoints[name] as EndpointDefinition;
    const at = `endpoints.${name}`;
    const before = issues.length;
    checkDefinition(def, at, issues);
    if (typeof h[name] !== 'function') {
      issues.push({
        path: `handlers.${name}`,
        message: h[name] === undefined ? 'missing' : 'must be a function',
      });
    }
    if (issues.length > before) continue;
    const paramNames: string[] = [];
    for (const segment of def.path.split('/')) {
      if (!segment.startsWith(':')) continue;
      const p = segment.slice(1);
      if (!NAME.test(p) || paramNames.includes(p)) {
        issues.push({
          path: `${at}.path`,
          message: `path parameter "${segment}" must be a unique identifier`,
        });
      }
      paramNames.push(p);
    }
    const key = `${def.method} ${def.path.replace(/:[^/]+/g, ':')}`;
    const other = seen.get(key);
    if (other !== undefined) {
      issues.push({ path: `${at}.path`, message: `same method and path as endpoints.${other}` });
    }
    seen.set(key, name);
    const response = def.response;
    let single: z.ZodType | undefined;
    let byStatus: Map<number, z.ZodType> | undefined;
    let stream: StreamResponse | undefined;
    if (isStreamResponse(response)) stream = response;
    else if (isZodSchema(response)) single = response;
    else {
      byStatus = new Map();
      for (const [s, schema] of Object.entries(response))
        byStatus.set(Number(s), schema as z.ZodType);
    }
    out.push({
      name,
      method: def.method,
      path: def.path,
      paramNames,
      params: def.params,
      query: def.query,
      body: def.body,
      headers: def.headers,
      arrayKeys: arrayKeysOf(def.query),
      single,
      byStatus,
      stream,
      handler: h[name] as (input: unknown) => unknown,
    });
  }
  for (const name of Object.keys(h)) {
    if (!Object.hasOwn(endpoints, name)) {
      issues.push({
        path: `handlers.${name}`,
        message: 'no endpoint of this name in the contract',
      });
    }
  }
  if (issues.length > 0) throw contractError(component, issues);
  return out;
}

function checkDefinition(def: EndpointDefinition, at: string, issues: ConfigIssue[]): void {
  if (typeof def !== 'object' || def === null) {
    issues.push({ path: at, message: 'must be an endpoint definition' });
    return;
  }
  if (!METHODS.has(def.method))
    issues.push({ path: `${at}.method`, message: 'must be an HTTP method' });
  if (typeof def.path !== 'string' || !def.path.startsWith('/')) {
    issues.push({ path: `${at}.path`, message: 'must start with "/"' });
  }
  for (const part of ['params', 'query', 'body', 'headers'] as const) {
    if (def[part] !== undefined && !isZodSchema(def[part])) {
      issues.push({ path: `${at}.${part}`, message: 'must be a zod schema' });
    }
  }
  const r = def.response as unknown;
  if (isStreamResponse(r) || isZodSchema(r)) return;
  if (typeof r !== 'object' || r === null || Object.keys(r).length === 0) {
    issues.push({
      path: `${at}.response`,
      message: 'must be a zod schema, a status map, sse() or ndjson()',
    });
    return;
  }
  for (const [status, schema] of Object.entries(r)) {
    if (!/^[1-5]\d\d$/.test(status))
      issues.push({ path: `${at}.response.${status}`, message: 'must be an HTTP status code' });
    else if (!isZodSchema(schema))
      issues.push({ path: `${at}.response.${status}`, message: 'must be a zod schema' });
  }
}

function contractError(component: string, issues: ConfigIssue[]) {
  return configError(component, issues, { what: 'contract' });
}

type Def = {
  type?: string;
  shape?: Record<string, unknown>;
  innerType?: unknown;
  in?: unknown;
  out?: unknown;
};
const defOf = (s: unknown): Def => (s as { _zod?: { def?: Def } })._zod?.def ?? {};

/** Strips optional/nullable/default/pipe/readonly wrappers to the type underneath. */
export function unwrapSchema(schema: unknown): unknown {
  let s = schema;
  for (let i = 0; i < 16; i++) {
    const d = defOf(s);
    if (d.innerType !== undefined) s = d.innerType;
    else if (d.type === 'pipe' && d.in !== undefined) s = d.in;
    else return s;
  }
  return s;
}

/** The keys of an object query schema whose values are arrays. */
function arrayKeysOf(query: z.ZodType | undefined): ReadonlySet<string> {
  const keys = new Set<string>();
  if (query === undefined) return keys;
  const shape = defOf(unwrapSchema(query)).shape;
  if (shape === undefined) return keys;
  for (const [key, s] of Object.entries(shape)) {
    if (defOf(unwrapSchema(s)).type === 'array') keys.add(key);
  }
  return keys;
}

/** `Allow` for each path template, from the endpoints declared on it. */
export function allowByPath(endpoints: readonly ServedEndpoint[]): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const ep of endpoints) {
    const key = ep.path.replace(/:[^/]+/g, ':');
    const list = out.get(key) ?? [];
    list.push(ep.method);
    if (ep.method === 'GET' && !list.includes('HEAD')) list.push('HEAD');
    out.set(key, list);
  }
  return out;
}

export type { AnyHandler };
