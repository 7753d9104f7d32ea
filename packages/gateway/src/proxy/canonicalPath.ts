/**
 * The one canonical URL pipeline: a request target is decoded once and rejected when it could
 * mean different things to the gateway and to the upstream. The returned `path` is used for
 * route matching, for auth and (re-encoded) for the upstream URL.
 *
 * RFC 3986 §6.2.2.2: only unreserved characters may be decoded without changing what a URI
 * means, so reserved ones the client percent-encoded (`%3D %2C %40 %26` ...) stay encoded, in
 * the matched path and on the way upstream. `;` (path parameters, which Tomcat, Jetty and Spring
 * strip), `%3B`, `%2F`, `%5C` and `%2E` are flagged as `delimiters`: the gateway answers them 400
 * unless the matched route opts in (`allowEncodedDelimiters`).
 */

/** A request target split into its canonical path and its raw query string. */
export interface CanonicalTarget {
  /**
   * Path with unreserved characters decoded and reserved ones left percent-encoded (upper case);
   * starts with `/`; never contains `.`/`..` segments, `//`, `\`, or controls.
   */
  readonly path: string;
  /** The same path, percent-encoded for the upstream request line. */
  readonly encodedPath: string;
  /** Raw query string including the leading `?`, or `''`. */
  readonly search: string;
  /** True when the path has `;`, `%3B`, `%2F`, `%5C` or `%2E`: 400 unless the route opts in. */
  readonly delimiters?: true;
}

/** Why a request target was rejected. */
export type BadTargetReason =
  | 'not-origin-form'
  | 'double-slash'
  | 'backslash'
  | 'encoded-slash'
  | 'double-encoding'
  | 'bad-encoding'
  | 'control-character'
  | 'dot-segment'
  | 'fragment';

/** Characters that make the fast path bail out to the careful one. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: detecting them is the point
const SUSPICIOUS = /[%\\;#\0-\u001f\u007f]|\/\.|\/\//;
/** A segment that is `.` or `..`, optionally followed by `;params` (Tomcat `..;/`). */
const DOT_SEGMENT = /^\.\.?(?:;.*)?$/;
/** A character that must be percent-encoded in a path segment (`%` kept: it starts an escape). */
const NEEDS_ENCODING = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]/;
/** Reserved (RFC 3986 gen-delims and sub-delims), `%` and `\`: never decoded. */
const KEEP_ENCODED = new Set(":/?#[]@!$&'()*+,;=%\\");
const FATAL_UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Canonicalises `target` (the raw `req.url`). Returns the reason string when the target must be
 * answered with 400 and never forwarded.
 *
 * @example
 * ```ts
 * canonicalPath('/api/a%20b?x=1'); // { path: '/api/a b', encodedPath: '/api/a%20b', search: '?x=1' }
 * canonicalPath('/api/a%3Db'); // { path: '/api/a%3Db', encodedPath: '/api/a%3Db', search: '' }
 * canonicalPath('/api/%2e%2e/admin'); // 'dot-segment'
 * ```
 */
export function canonicalPath(target: string): CanonicalTarget | BadTargetReason {
  const q = target.indexOf('?');
  const raw = q === -1 ? target : target.slice(0, q);
  const search = q === -1 ? '' : target.slice(q);
  if (raw.charCodeAt(0) !== 47 /* / */) return 'not-origin-form';
  if (!SUSPICIOUS.test(raw)) {
    if (search.includes('#')) return 'fragment';
    return { path: raw, encodedPath: raw, search };
  }
  if (raw.includes('#') || search.includes('#')) return 'fragment';
  if (raw.charCodeAt(1) === 47) return 'double-slash';
  if (raw.includes('\\')) return 'backslash';
  let delimiters = raw.includes(';');
  let decoded = raw;
  if (raw.includes('%')) {
    if (/%(?![0-9A-Fa-f]{2})/.test(raw)) return 'bad-encoding';
    if (/%25/.test(raw)) return 'double-encoding';
    if (/%(?:2[fFeE]|5[cC]|3[bB])/.test(raw)) delimiters = true;
    const out = decodeUnreserved(raw);
    if (out === undefined) return 'bad-encoding';
    decoded = out;
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is the point
  if (/[\0-\u001f\u007f]/.test(decoded)) return 'control-character';
  if (decoded.includes('//')) return 'double-slash';
  // Dot segments, also between encoded slashes (an upstream may decode them).
  const segments = decoded.split(/\/|%2F|%5C/);
  for (let i = 1; i < segments.length; i++) {
    if (DOT_SEGMENT.test(segments[i] as string)) return 'dot-segment';
  }
  const result = { path: decoded, encodedPath: encodePath(decoded), search };
  return delimiters ? { ...result, delimiters: true } : result;
}

/** Decodes percent-escapes except reserved characters (kept, upper case). Undefined: bad UTF-8. */
function decodeUnreserved(raw: string): string | undefined {
  let failed = false;
  const out = raw.replace(/(?:%[0-9A-Fa-f]{2})+/g, (run) => {
    let text = '';
    const bytes: number[] = [];
    const flush = (): void => {
      if (bytes.length === 0) return;
      try {
        text += FATAL_UTF8.decode(Uint8Array.from(bytes));
      } catch {
        failed = true;
      }
      bytes.length = 0;
    };
    for (let i = 0; i < run.length; i += 3) {
      const byte = Number.parseInt(run.slice(i + 1, i + 3), 16);
      if (byte < 0x80 && KEEP_ENCODED.has(String.fromCharCode(byte))) {
        flush();
        text += run.slice(i, i + 3).toUpperCase();
      } else bytes.push(byte);
    }
    flush();
    return text;
  });
  return failed ? undefined : out;
}

/**
 * Percent-encodes a canonical path for a request line: keeps `/`, the RFC 3986 pchars and the
 * escapes `canonicalPath` left in place; encodes the rest as UTF-8.
 */
export function encodePath(path: string): string {
  if (!NEEDS_ENCODING.test(path)) return path;
  let out = '';
  for (const ch of path) {
    if (NEEDS_ENCODING.test(ch)) {
      for (const byte of Buffer.from(ch, 'utf8')) {
        out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
      }
    } else {
      out += ch;
    }
  }
  return out;
}
