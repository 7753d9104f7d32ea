import type { z } from 'zod';
import type { RequestContext } from '../context.js';
import { type ConfigIssue, RequestValidationError } from '../errors.js';
import { toIssues } from '../options.js';
import type { CompiledEndpoint } from './compileEndpoint.js';
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
    const r = ep.params.safeParse(params);
    if (r.success) params = r.data as Record<string, unknown>;
    else issues = addIssues(issues, 'params', r.error);
  }
  if (ep.query !== undefined) {
    const r = ep.query.safeParse(query);
    if (r.success) query = r.data;
    else issues = addIssues(issues, 'query', r.error);
  }
  if (ep.body !== undefined) {
    const r = ep.body.safeParse(body);
    if (r.success) body = r.data;
    else issues = addIssues(issues, 'body', r.error);
  }
  if (ep.headers !== undefined) {
    const r = ep.headers.safeParse(headers ?? {});
    if (r.success) headers = { ...headers, ...(r.data as Record<string, unknown>) };
    else issues = addIssues(issues, 'headers', r.error);
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
      if (value !== undefined && value !== null) out[key.toLowerCase()] = String(value);
    }
  }
  let text: string | undefined;
  if (body !== undefined) {
    text = JSON.stringify(body);
    out['content-type'] ??= 'application/json';
  }
  if (out['x-request-id'] === undefined) {
    const requestId = ctx?.requestId;
    if (requestId !== undefined) out['x-request-id'] = requestId;
  }
  return { path, body: text, headers: out };
}

function addIssues(
  issues: ConfigIssue[] | undefined,
  prefix: string,
  error: z.ZodError,
): ConfigIssue[] {
  const out = issues ?? [];
  for (const issue of toIssues(error)) {
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
