import { validateHeaderValue } from 'node:http';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { jsonHeader, jsonSafe } from './auth.js';

describe('identity header encoding', () => {
  it('any claims give a legal header value that parses back to the same JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (claims) => {
        const value = jsonHeader({ sub: 'x', claims });
        expect(() => validateHeaderValue('x-trellis-identity', value)).not.toThrow();
        expect(/^[\x20-\x7e]*$/.test(value)).toBe(true);
        expect(JSON.parse(value)).toEqual(JSON.parse(JSON.stringify({ sub: 'x', claims })));
      }),
      { numRuns: 500 },
    );
  });

  it('any subject gives a legal, injection-free header value', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.oneof(fc.constant('\ud800'), fc.string({ unit: 'binary', maxLength: 1 })),
        }),
        (subject) => {
          const value = jsonSafe(subject);
          expect(() => validateHeaderValue('x-user', value)).not.toThrow();
          expect(value).not.toMatch(/[\r\n]/);
        },
      ),
      { numRuns: 500 },
    );
    // Lone surrogates (legal in a JWT's JSON) must not throw.
    expect(jsonSafe('a\ud800b')).toBe('a%EF%BF%BDb');
    expect(jsonSafe('ü')).toBe('%C3%BC');
  });
});
