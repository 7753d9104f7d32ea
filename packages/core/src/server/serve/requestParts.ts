import type { ConfigIssue } from '../../errors.js';
import { prefixIssues, type ServedEndpoint } from './compileContract.js';

/** The raw request parts, before the endpoint's schemas. */
export interface RawParts {
  params: Record<string, unknown>;
  query: Record<string, unknown>;
  body: unknown;
  headers: Record<string, unknown>;
}

/** The parsed parts (`z.output` of each schema), or the issues naming each bad field. */
export type PartsResult =
  | { ok: true; params: unknown; query: unknown; body: unknown; headers: unknown }
  | { ok: false; issues: ConfigIssue[] };

/**
 * Makes a query object fit the schema's arity: a key repeated where the schema expects one
 * value is an issue (`query.limit: expected one value, got 2`); a single value where the
 * schema expects an array becomes a one-item array. Mutates and returns `query`.
 */
export function normalizeQuery(
  ep: ServedEndpoint,
  query: Record<string, unknown>,
  issues: ConfigIssue[],
): Record<string, unknown> {
  for (const key in query) {
    const value = query[key];
    const many = ep.arrayKeys.has(key);
    if (Array.isArray(value)) {
      if (!many) {
        issues.push({ path: `query.${key}`, message: `expected one value, got ${value.length}` });
        // Named once: the schema sees the first value.
        query[key] = value[0];
      }
    } else if (many && value !== undefined) {
      query[key] = [value];
    }
  }
  return query;
}

/** Parses a query string (without `?`) into `{ key: value | value[] }`. */
export function parseQueryString(search: string, issues: ConfigIssue[]): Record<string, unknown> {
  const out: Record<string, unknown> = Object.create(null);
  if (search === '') return out;
  for (const pair of search.split('&')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    const key = decode(rawKey);
    const value = decode(rawValue);
    if (key === undefined || value === undefined) {
      issues.push({ path: `query.${key ?? rawKey}`, message: 'malformed percent-encoding' });
      continue;
    }
    const prev = out[key];
    if (prev === undefined) out[key] = value;
    else if (Array.isArray(prev)) prev.push(value);
    else out[key] = [prev, value];
  }
  return out;
}

function decode(text: string): string | undefined {
  const plus = text.includes('+') ? text.replace(/\+/g, ' ') : text;
  if (!plus.includes('%')) return plus;
  try {
    return decodeURIComponent(plus);
  } catch {
    return undefined;
  }
}

/** Decodes one path segment; undefined when its percent-encoding is malformed. */
export function decodeSegment(segment: string): string | undefined {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

/**
 * Validates every part with the endpoint's schemas and collects every issue, so one 400 names
 * each bad field. Parts without a schema pass through as read (path params as strings).
 */
export function validateParts(
  ep: ServedEndpoint,
  raw: RawParts,
  issues: ConfigIssue[],
): PartsResult {
  let params: unknown = raw.params;
  let query: unknown = raw.query;
  let body: unknown = raw.body;
  let headers: unknown = raw.headers;
  if (ep.params !== undefined) {
    const r = ep.params.safeParse(params);
    if (r.success) params = r.data;
    else prefixIssues('params', r.error, issues);
  }
  if (ep.query !== undefined) {
    const r = ep.query.safeParse(query);
    if (r.success) query = r.data;
    else prefixIssues('query', r.error, issues);
  } else query = undefined;
  if (ep.body !== undefined) {
    const r = ep.body.safeParse(body);
    if (r.success) body = r.data;
    else prefixIssues('body', r.error, issues);
  } else body = undefined;
  if (ep.headers !== undefined) {
    const r = ep.headers.safeParse(headers);
    if (r.success) headers = r.data;
    else prefixIssues('headers', r.error, issues);
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, params, query, body, headers };
}

const JSON_MEDIA = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

/** True when a content type is JSON (`application/json`, `application/x+json`, with params). */
export function isJsonContentType(type: string | undefined): boolean {
  return type !== undefined && JSON_MEDIA.test(type);
}
