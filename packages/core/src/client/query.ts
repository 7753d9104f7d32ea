import { RequestValidationError } from '../errors.js';
import { encodeComponent } from './PathTemplate.js';

/**
 * Serialises a query object: `{ a: 1, tags: ['x', 'y'], skip: undefined }` becomes
 * `?a=1&tags=x&tags=y`. Strings, numbers, booleans, bigints and Dates (ISO 8601) are allowed,
 * arrays repeat the key, `undefined` and `null` are left out. Returns `''` when nothing is set.
 */
export function serializeQuery(query: unknown): string {
  if (query === undefined || query === null) return '';
  if (typeof query !== 'object' || Array.isArray(query)) {
    throw invalidQuery('(root)', 'must be an object');
  }
  let out = '';
  for (const key in query) {
    const value = (query as Record<string, unknown>)[key];
    if (value === undefined || value === null) continue;
    const k = encodeComponent(key, `query.${key}`);
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        if (item === undefined || item === null) continue;
        out += `${out === '' ? '?' : '&'}${k}=${encodeValue(item, `${key}[${i}]`)}`;
      }
    } else {
      out += `${out === '' ? '?' : '&'}${k}=${encodeValue(value, key)}`;
    }
  }
  return out;
}

function encodeValue(value: unknown, path: string): string {
  switch (typeof value) {
    case 'string':
      return encodeComponent(value, `query.${path}`);
    case 'number':
    case 'boolean':
    case 'bigint':
      return String(value);
    default:
      if (value instanceof Date) return encodeURIComponent(value.toISOString());
      throw invalidQuery(path, 'must be a string, number, boolean, Date or an array of them');
  }
}

function invalidQuery(path: string, message: string) {
  return new RequestValidationError(`invalid request: query.${path}: ${message}`, {
    issues: [{ path: `query.${path}`, message }],
  });
}
