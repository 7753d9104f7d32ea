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
    ['/a/%2fb', 'encoded-slash'],
    ['/a/%5cb', 'backslash'],
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

  it('encodePath leaves pchars alone and encodes the rest as UTF-8', () => {
    expect(encodePath('/a:b@c/ü ?#')).toBe('/a:b@c/%C3%BC%20%3F%23');
  });
});
