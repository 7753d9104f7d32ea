import type { z } from 'zod';
import type { RequestContext } from '../context.js';
import { type ConfigIssue, RequestValidationError } from '../errors.js';
import { describeThrown } from '../faults/describeThrown.js';
import { toIssues } from '../options.js';
import type { CompiledEndpoint } from './compileEndpoint.js';
import { addIdempotencyKey } from './idempotencyKey.js';
import { serializeQuery } from './query.js';

/** What an endpoint method is called with (typed per endpoint by `EndpointInput`). */
export type CallInput = {
  readonly params?: Readonly<Record<string, unknown>>;
  readonly query?: unknown;
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, unknown>>;
  readonly signal?: AbortSignal;
  readonly timeoutMs?: number;
};

/** A request built and validated once per call, reused by every attempt. */
export interface PreparedRequest {
  readonly path: string;
  readonly body: string | undefined;
  readonly headers: Record<string, string>;
}

/**
 * Validates a call's input against the endpoint's schemas and builds the request: path with
 * params and query, JSON body, headers (client defaults, then the call's, then the request id of
 * the ambient context). Throws `RequestValidationError` naming every bad field, before any I/O.
 */
export function prepareRequest(
  ep: CompiledEndpoint,
  input: CallInput,
  defaultHeaders: Readonly<Record<string, string>>,
  ctx: RequestContext | undefined,
): PreparedRequest {
  let params = input.params;
  let query = input.query;
  let body = input.body;
  let headers = input.headers;
  let issues: ConfigIssue[] | undefined;
  if (ep.params !== undefined) {
    const r = check(ep.params, params);
    if (r.success) params = r.data as Record<string, unknown>;
    else issues = addIssues(issues, 'params', r.issues);
  }
  if (ep.query !== undefined) {
    // An endpoint whose query fields are all optional need not be given a query.
    const r = check(ep.query, query ?? {});
    if (r.success) query = r.data;
    else issues = addIssues(issues, 'query', r.issues);
  }
  if (ep.body !== undefined) {
    const r = check(ep.body, body);
    if (r.success) body = r.data;
    else issues = addIssues(issues, 'body', r.issues);
  }
  if (ep.headers !== undefined) {
    const r = check(ep.headers, headers ?? {});
    if (r.success) headers = { ...headers, ...(r.data as Record<string, unknown>) };
    else issues = addIssues(issues, 'headers', r.issues);
  }
  if (issues !== undefined) {
    const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    throw new RequestValidationError(`${ep.name}: invalid request: ${detail}`, { issues });
  }
  const path = ep.template.build(params) + serializeQuery(query);
  const out: Record<string, string> = { ...defaultHeaders };
  if (headers !== undefined) {
    for (const key in headers) {
      const value = headers[key];
      if (value === undefined || value === null) continue;
      const text = headerValue(key, value);
      // undici refuses a bad header only once a connection is leased; refuse it here, before
      // any I/O, so it never reaches a balancer or a breaker as if the upstream had failed.
      checkHeader(ep.name, key, text);
      out[key.toLowerCase()] = text;
    }
  }
  let text: string | undefined;
  if (body !== undefined) {
    text = JSON.stringify(body);
    out['content-type'] ??= 'application/json';
  }
  if (ep.idempotencyKey) addIdempotencyKey(out);
  if (out['x-request-id'] === undefined) {
    const requestId = ctx?.requestId;
    if (requestId !== undefined) out['x-request-id'] = requestId;
  }
  return { path, body: text, headers: out };
}

type Checked = { success: true; data: unknown } | { success: false; issues: ConfigIssue[] };

/** `safeParse`, except that a refinement or transform that throws is an issue, not a crash. */
function check(schema: z.ZodType, value: unknown): Checked {
  try {
    const r = schema.safeParse(value);
    return r.success ? r : { success: false, issues: toIssues(r.error) };
  } catch (err) {
    return {
      success: false,
      issues: [{ path: '(root)', message: `schema threw: ${describeThrown(err)}` }],
    };
  }
}

// RFC 9110 §5.1 field names are tokens; §5.5 values are visible characters, spaces and tabs
// (obs-text allowed), never CR, LF, NUL or another control character.
export const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** True when `value` holds a character RFC 9110 does not allow in a field value. */
export function badValue(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09) || c === 0x7f || c > 0xff) return true;
  }
  return false;
}

function headerValue(name: string, value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    default:
      throw invalidHeader(name, 'must be a string, number or boolean');
  }
}

function checkHeader(endpoint: string, name: string, value: string): void {
  if (!TOKEN.test(name))
    throw invalidHeader(name, 'is not a valid header name (RFC 9110 token)', endpoint);
  if (badValue(value)) {
    throw invalidHeader(
      name,
      'must not contain control characters (CR, LF, NUL, ...) or characters above U+00FF',
      endpoint,
    );
  }
}

function invalidHeader(name: string, message: string, endpoint?: string) {
  const path = `headers.${name}`;
  return new RequestValidationError(
    `${endpoint === undefined ? '' : `${endpoint}: `}invalid request: ${path}: ${message}`,
    { issues: [{ path, message }] },
  );
}

function addIssues(
  issues: ConfigIssue[] | undefined,
  prefix: string,
  found: readonly ConfigIssue[],
): ConfigIssue[] {
  const out = issues ?? [];
  for (const issue of found) {
    out.push({
      path: issue.path === '(root)' ? prefix : `${prefix}.${issue.path}`,
      message: issue.message,
    });
  }
  return out;
}

/** The client's default headers, names in lower case. */
export function lowerCaseKeys(
  headers: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers !== undefined)
    for (const key in headers) out[key.toLowerCase()] = headers[key] as string;
  return out;
}
