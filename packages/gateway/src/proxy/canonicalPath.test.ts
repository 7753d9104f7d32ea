import { describe, expect, it } from 'vitest';
import { canonicalPath, encodePath } from './canonicalPath.js';

describe('canonicalPath', () => {
  it('keeps plain paths as they are (fast path) and splits the query', () => {
    expect(canonicalPath('/api/users/7?x=1&y=%2e')).toEqual({
      path: '/api/users/7',
      encodedPath: '/api/users/7',
      search: '?x=1&y=%2e',
    });
  });

  it('decodes once and re-encodes for the upstream', () => {
    expect(canonicalPath('/a%20b/%41/.well-known')).toEqual({
      path: '/a b/A/.well-known',
      encodedPath: '/a%20b/A/.well-known',
      search: '',
    });
  });

  it.each([
    ['/a/../b', 'dot-segment'],
    ['/a/%2e%2e/b', 'dot-segment'],
    ['/a/.%2E', 'dot-segment'],
    ['/a/..;x/b', 'dot-segment'],
    ['/a/%2e%2e%2fb', 'dot-segment'],
    ['/a/x#frag', 'fragment'],
    ['/a?x#frag', 'fragment'],
    ['/a\\b', 'backslash'],
    ['/a/%252e', 'double-encoding'],
    ['//a', 'double-slash'],
    ['/a//b', 'double-slash'],
    ['http://x/a', 'not-origin-form'],
    ['*', 'not-origin-form'],
    ['/a/%00', 'control-character'],
    ['/a/%0a', 'control-character'],
    ['/a/%zz', 'bad-encoding'],
    ['/a/%c0%ae', 'bad-encoding'],
  ])('rejects %s (%s)', (target, reason) => {
    expect(canonicalPath(target)).toBe(reason);
  });

  it('keeps reserved characters encoded as the client sent them (RFC 3986 §6.2.2.2)', () => {
    expect(canonicalPath('/a/%3d%2C%40%26x%7E')).toEqual({
      path: '/a/%3D%2C%40%26x~',
      encodedPath: '/a/%3D%2C%40%26x~',
      search: '',
    });
  });

  it.each(['/admin;x/users', '/admin%3Bx/users', '/a/%2Fb', '/a/%5cb', '/a/%2Ex'])(
    'flags path delimiters in %s (400 unless the route opts in)',
    (target) => {
      const t = canonicalPath(target);
      expect(typeof t === 'object' && t.delimiters).toBe(true);
    },
  );

  it('encodePath leaves pchars alone and encodes the rest as UTF-8', () => {
    expect(encodePath('/a:b@c/ü ?#')).toBe('/a:b@c/%C3%BC%20%3F%23');
    expect(encodePath('/a%3Db')).toBe('/a%3Db');
  });
});
