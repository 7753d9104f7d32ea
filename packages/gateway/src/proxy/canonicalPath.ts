/**
 * The one canonical URL pipeline: a request target is decoded once and rejected when it could
 * mean different things to the gateway and to the upstream. The returned `path` is used for
 * route matching, for auth and (re-encoded) for the upstream URL.
 */

/** A request target split into its canonical decoded path and its raw query string. */
export interface CanonicalTarget {
  /** Decoded path; starts with `/`; never contains `.`/`..` segments, `//`, `\`, or controls. */
  readonly path: string;
  /** The same path, percent-encoded for the upstream request line. */
  readonly encodedPath: string;
  /** Raw query string including the leading `?`, or `''`. */
  readonly search: string;
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
  | 'dot-segment';

/** Characters that make the fast path bail out to the careful one. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: detecting them is the point
const SUSPICIOUS = /[%\\\0-\u001f\u007f]|\/\.|\/\//;
/** A segment that is `.` or `..`, optionally followed by `;params` (Tomcat `..;/`). */
const DOT_SEGMENT = /^\.\.?(?:;.*)?$/;
/** A decoded character that must be percent-encoded again in a path segment. */
const NEEDS_ENCODING = /[^A-Za-z0-9\-._~!$&'()*+,;=:@/]/;

/**
 * Canonicalises `target` (the raw `req.url`). Returns the reason string when the target must be
 * answered with 400 and never forwarded.
 *
 * @example
 * ```ts
 * canonicalPath('/api/a%20b?x=1'); // { path: '/api/a b', encodedPath: '/api/a%20b', search: '?x=1' }
 * canonicalPath('/api/%2e%2e/admin'); // 'dot-segment'
 * ```
 */
export function canonicalPath(target: string): CanonicalTarget | BadTargetReason {
  const q = target.indexOf('?');
  const raw = q === -1 ? target : target.slice(0, q);
  const search = q === -1 ? '' : target.slice(q);
  if (raw.charCodeAt(0) !== 47 /* / */) return 'not-origin-form';
  if (!SUSPICIOUS.test(raw)) {
    return { path: raw, encodedPath: raw, search };
  }
  if (raw.charCodeAt(1) === 47) return 'double-slash';
  if (raw.includes('\\')) return 'backslash';
  let decoded = raw;
  if (raw.includes('%')) {
    if (/%(?![0-9A-Fa-f]{2})/.test(raw)) return 'bad-encoding';
    if (/%2f/i.test(raw)) return 'encoded-slash';
    if (/%5c/i.test(raw)) return 'backslash';
    if (/%25/.test(raw)) return 'double-encoding';
    try {
      decoded = decodeURIComponent(raw);
    } catch {
      return 'bad-encoding';
    }
  }
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting them is the point
  if (/[\0-\u001f\u007f]/.test(decoded)) return 'control-character';
  if (decoded.includes('//')) return 'double-slash';
  const segments = decoded.split('/');
  for (let i = 1; i < segments.length; i++) {
    if (DOT_SEGMENT.test(segments[i] as string)) return 'dot-segment';
  }
  return { path: decoded, encodedPath: encodePath(decoded), search };
}

/** Percent-encodes a decoded path for a request line (keeps `/` and the RFC 3986 pchars). */
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
