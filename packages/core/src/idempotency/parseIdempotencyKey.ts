/**
 * Reads the `Idempotency-Key` request header (draft-ietf-httpapi-idempotency-key-header). The
 * draft defines the value as an RFC 8941 sf-string (`"8e03978e-40d5"`); Stripe and most servers
 * send a bare token (`8e03978e-40d5`). Both are accepted and mean the same key.
 */

/** The header's name, lower case as Node reports it. */
export const IDEMPOTENCY_KEY_HEADER = 'idempotency-key';
/** Set to `true` on an answer replayed from the store. */
export const IDEMPOTENT_REPLAYED_HEADER = 'idempotent-replayed';
/** Longest key accepted by default (characters). */
export const DEFAULT_MAX_KEY_LENGTH = 255;

export type ParsedKey =
  | { readonly ok: true; readonly key: string }
  | { readonly ok: false; readonly reason: string };

// RFC 9110 tchar.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/**
 * Parses one header value into a key, or says what is wrong with it. A bare value must be an
 * RFC 9110 token (so a comma, which a repeated header becomes, is refused); a quoted value follows
 * RFC 8941 §3.3.3 (printable ASCII, only `\"` and `\\` escapes).
 */
export function parseIdempotencyKey(
  value: string | readonly string[],
  maxLength = DEFAULT_MAX_KEY_LENGTH,
): ParsedKey {
  if (typeof value !== 'string') {
    if (value.length !== 1) return { ok: false, reason: 'the header was sent more than once' };
    return parseIdempotencyKey(value[0] as string, maxLength);
  }
  // Optional whitespace around a field value is not part of it (RFC 9110 §5.5).
  const v = value.replace(/^[ \t]+|[ \t]+$/g, '');
  if (v === '') return { ok: false, reason: 'the key is empty' };
  let key: string;
  if (v.charCodeAt(0) === 0x22) {
    let out = '';
    let i = 1;
    for (; i < v.length; i++) {
      const c = v.charCodeAt(i);
      if (c === 0x5c) {
        const next = v.charCodeAt(i + 1);
        if (next !== 0x22 && next !== 0x5c) {
          return { ok: false, reason: 'a quoted key may only escape `"` and `\\`' };
        }
        out += v[i + 1];
        i++;
        continue;
      }
      if (c === 0x22) break;
      if (c < 0x20 || c === 0x7f) {
        return { ok: false, reason: `the key holds a control character (0x${hex(c)})` };
      }
      if (c > 0x7e) return { ok: false, reason: 'the key holds a non-ASCII character' };
      out += v[i];
    }
    if (i >= v.length) return { ok: false, reason: 'the quoted key has no closing quote' };
    if (i !== v.length - 1) {
      return { ok: false, reason: 'unexpected characters after the quoted key (sent twice?)' };
    }
    key = out;
    if (key === '') return { ok: false, reason: 'the key is empty' };
  } else {
    if (!TOKEN.test(v)) {
      for (let i = 0; i < v.length; i++) {
        const c = v.charCodeAt(i);
        if (c < 0x20 || c === 0x7f) {
          return { ok: false, reason: `the key holds a control character (0x${hex(c)})` };
        }
        if (c > 0x7e) return { ok: false, reason: 'the key holds a non-ASCII character' };
      }
      if (v.includes(',')) return { ok: false, reason: 'the header was sent more than once' };
      return {
        ok: false,
        reason: 'a bare key must be a token (letters, digits, -._~ and the like); quote others',
      };
    }
    key = v;
  }
  if (key.length > maxLength) {
    return { ok: false, reason: `the key is longer than ${maxLength} characters` };
  }
  return { ok: true, key };
}

function hex(c: number): string {
  return c.toString(16).padStart(2, '0');
}

/** Formats a key as the draft's sf-string (`"..."`), for senders that want the quoted form. */
export function quoteIdempotencyKey(key: string): string {
  return `"${key.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}
