import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { instanceFromUrl, instanceUrlProblem } from './instances.js';
import { staticDiscovery } from './staticDiscovery.js';

const hostile = [
  'javascript:alert(1)',
  'JAVASCRIPT:alert(1)',
  'file:///etc/passwd',
  'data:text/html,<script>1</script>',
  'ftp://example.com/',
  'ws://example.com/',
  '//example.com/',
  '/relative',
  'http://',
  ' ',
  '',
];

describe('instanceUrlProblem: the one URL rule of every resolver (issue 18 item 7)', () => {
  it('refuses what is not an absolute http(s) URL with a host, naming it', () => {
    for (const url of hostile) {
      expect(instanceUrlProblem(url)).toBeDefined();
      expect(() => staticDiscovery({ services: { s: [url] } })).toThrow(/services\.s\[0\]/);
    }
    expect(instanceUrlProblem('http://127.0.0.1:8080')).toBeUndefined();
    expect(instanceUrlProblem('https://[::1]/base')).toBeUndefined();
  });

  it('property: accepted exactly when WHATWG parses it as http(s) with a host; static discovery agrees', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.webUrl(),
          fc.string(),
          fc.constantFrom(...hostile),
          fc
            .tuple(
              fc.constantFrom('javascript:', 'file:', 'data:', 'http:', 'https:', 'HTTP:'),
              fc.string(),
            )
            .map(([a, b]) => a + b),
        ),
        (url) => {
          let expected = false;
          try {
            const u = new URL(url);
            expected = (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
          } catch {}
          expect(instanceUrlProblem(url) === undefined).toBe(expected);
          if (expected) {
            expect(instanceFromUrl(url).url.startsWith('http')).toBe(true);
          } else {
            expect(() => staticDiscovery({ services: { s: [url] } })).toThrow(/staticDiscovery/);
          }
        },
      ),
      { seed: 1809, numRuns: 1_000 },
    );
  });
});
