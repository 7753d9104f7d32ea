import { describe, expect, it } from 'vitest';
import { ConfigError, RequestValidationError } from '../errors.js';
import { PathTemplate } from './PathTemplate.js';

describe('PathTemplate', () => {
  it('fills :name segments in order', () => {
    const t = new PathTemplate('/items/:id/parts/:part', 'e');
    expect(t.names).toEqual(['id', 'part']);
    expect(t.build({ id: 42, part: 'lid' })).toBe('/items/42/parts/lid');
    expect(t.otelTemplate).toBe('/items/{id}/parts/{part}');
  });

  it('encodes each value as one segment, so params cannot inject path, query or fragment', () => {
    const t = new PathTemplate('/items/:id', 'e');
    expect(t.build({ id: '../admin?x=1#f' })).toBe('/items/..%2Fadmin%3Fx%3D1%23f');
    expect(t.build({ id: 'a b/ü%' })).toBe('/items/a%20b%2F%C3%BC%25');
  });

  it('rejects dot segments, empty and missing values', () => {
    const t = new PathTemplate('/items/:id', 'e');
    for (const id of ['..', '.', '']) {
      expect(() => t.build({ id })).toThrow(RequestValidationError);
    }
    expect(() => t.build({})).toThrow(/params\.id: must be a string or a number/);
    expect(() => t.build(undefined)).toThrow(RequestValidationError);
  });

  it('rejects bad templates with a ConfigError naming the endpoint', () => {
    expect(() => new PathTemplate('items', 'getItem')).toThrow(ConfigError);
    expect(() => new PathTemplate('/a/:id/:id', 'getItem')).toThrow(/endpoints\.getItem\.path/);
    expect(() => new PathTemplate('/a/:1x', 'getItem')).toThrow(ConfigError);
  });

  it('keeps templates without params as they are', () => {
    expect(new PathTemplate('/health', 'h').build(undefined)).toBe('/health');
    expect(new PathTemplate('/', 'h').build(undefined)).toBe('/');
  });
});
