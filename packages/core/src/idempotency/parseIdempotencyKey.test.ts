import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIdempotencyKey, quoteIdempotencyKey } from './parseIdempotencyKey.js';

describe('parseIdempotencyKey', () => {
  it('accepts a bare token and the RFC 8941 quoted string alike', () => {
    expect(parseIdempotencyKey('8e03978e-40d5-43e8')).toEqual({
      ok: true,
      key: '8e03978e-40d5-43e8',
    });
    expect(parseIdempotencyKey('"8e03978e-40d5-43e8"')).toEqual({
      ok: true,
      key: '8e03978e-40d5-43e8',
    });
    expect(parseIdempotencyKey('"a b \\"c\\" \\\\"')).toEqual({ ok: true, key: 'a b "c" \\' });
    expect(parseIdempotencyKey(' \tabc\t ')).toEqual({ ok: true, key: 'abc' });
    expect(parseIdempotencyKey(['abc'])).toEqual({ ok: true, key: 'abc' });
  });

  it.each([
    ['', 'empty'],
    ['""', 'empty'],
    ['   ', 'empty'],
    ['a\u0000b', 'control character (0x00)'],
    ['"a\u0007b"', 'control character (0x07)'],
    ['a\u007fb', 'control character (0x7f)'],
    ['"a\u00e9"', 'non-ASCII'],
    ['\u00e9', 'non-ASCII'],
    ['a,b', 'more than once'],
    ['"a", "b"', 'after the quoted key'],
    ['"a\\tb"', 'only escape'],
    ['"abc', 'closing quote'],
    ['a"b', 'token'],
    ['a b', 'token'],
  ])('refuses %j (%s)', (value, reason) => {
    const r = parseIdempotencyKey(value);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.reason).toContain(reason);
  });

  it('refuses a key longer than the limit, and a header sent twice', () => {
    expect(parseIdempotencyKey('x'.repeat(255)).ok).toBe(true);
    const long = parseIdempotencyKey('x'.repeat(256));
    expect(long.ok || long.reason).toBe('the key is longer than 255 characters');
    const short = parseIdempotencyKey('abcdef', 5);
    expect(short.ok || short.reason).toBe('the key is longer than 5 characters');
    const twice = parseIdempotencyKey(['a', 'b']);
    expect(twice.ok || twice.reason).toBe('the header was sent more than once');
  });

  it('reads back every printable key it quotes (property)', () => {
    fc.assert(
      fc.property(
        fc.string({
          unit: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
          minLength: 1,
          maxLength: 255,
        }),
        (key) => {
          expect(parseIdempotencyKey(quoteIdempotencyKey(key))).toEqual({ ok: true, key });
        },
      ),
      { seed: 20, numRuns: 500 },
    );
  });

  it('never throws on any header value (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (value) => {
        const r = parseIdempotencyKey(value);
        if (r.ok) expect(r.key.length).toBeGreaterThan(0);
        else expect(r.reason.length).toBeGreaterThan(0);
      }),
      { seed: 21, numRuns: 1000 },
    );
  });
});
