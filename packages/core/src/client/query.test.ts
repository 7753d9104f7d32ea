import { describe, expect, it } from 'vitest';
import { RequestValidationError } from '../errors.js';
import { serializeQuery } from './query.js';

describe('serializeQuery', () => {
  it('serialises scalars, repeats arrays, skips undefined and null', () => {
    expect(
      serializeQuery({ a: 1, b: true, tag: ['x', 'y z'], skip: undefined, none: null, n: 10n }),
    ).toBe('?a=1&b=true&tag=x&tag=y%20z&n=10');
  });

  it('encodes keys and values', () => {
    expect(serializeQuery({ 'a&b': 'c=d&e', q: 'ü#' })).toBe('?a%26b=c%3Dd%26e&q=%C3%BC%23');
    expect(serializeQuery({ at: new Date(Date.UTC(2026, 0, 2)) })).toBe(
      '?at=2026-01-02T00%3A00%3A00.000Z',
    );
  });

  it('returns an empty string when there is nothing to send', () => {
    expect(serializeQuery(undefined)).toBe('');
    expect(serializeQuery({})).toBe('');
    expect(serializeQuery({ a: undefined })).toBe('');
  });

  it('rejects nested objects with the offending path', () => {
    expect(() => serializeQuery({ filter: { a: 1 } })).toThrow(RequestValidationError);
    expect(() => serializeQuery({ list: [1, { a: 1 }] })).toThrow(/query\.list\[1\]/);
    expect(() => serializeQuery('a=1')).toThrow(RequestValidationError);
  });
});
