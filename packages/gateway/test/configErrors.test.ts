/**
 * Config errors a new user hits first (issue 17 item 8): every problem of a config in one
 * ConfigError with plain paths, the file format detected from the content when the extension
 * says nothing, and a route's `upstream` given as a URL string or a list of them.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { formatOf } from '../src/config/loadConfigFile.js';
import { loadConfigFile, parseGatewayConfig } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'trellis-gw-config-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

function issuesOf(fn: () => unknown): { path: string; message: string }[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return [...(err as ConfigError).issues];
  }
  throw new Error('expected a ConfigError');
}

describe('config errors', () => {
  it('reports every problem at once: schema, unknown provider, duplicate names', () => {
    const issues = issuesOf(() =>
      parseGatewayConfig({
        auth: { jwt: { main: { secret: 'short', algorithms: ['HS256'] } } },
        routes: [
          { name: 'a', path: '/a', upstream: 'http://127.0.0.1:1', auth: { jwt: 'mian' } },
          { name: 'a', path: '/b', upstream: 'ftp://x' },
        ],
      }),
    );
    const paths = issues.map((i) => i.path);
    expect(paths).toContain('auth.jwt.main.secret');
    expect(paths).toContain('routes[0].auth.jwt');
    expect(paths).toContain('routes[1].name');
    expect(paths.some((p) => p.startsWith('routes[1].upstream'))).toBe(true);
    expect(issues.find((i) => i.path === 'routes[0].auth.jwt')?.message).toBe(
      'unknown JWT provider "mian" (defined: main)',
    );
    expect(paths.some((p) => p.includes('routes.routes'))).toBe(false);
  });

  it('an unset environment variable comes with the other problems of the file', async () => {
    const path = file(
      'env.yaml',
      'auth: { jwt: { main: { secret: "${TRELLIS_TEST_UNSET_VAR}", algorithms: [HS256] } } }\nroutes:\n  - { path: /a, upstream: "http://127.0.0.1:1", auth: { jwt: mian } }\n',
    );
    const err = await loadConfigFile(path, {}).then(
      () => undefined,
      (e: unknown) => e as ConfigError,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const paths = err?.issues.map((i) => i.path) ?? [];
    expect(paths).toContain('auth.jwt.main.secret');
    expect(paths).toContain('routes[0].auth.jwt');
    expect(err?.issues.find((i) => i.path === 'auth.jwt.main.secret')?.message).toContain(
      'environment variable TRELLIS_TEST_UNSET_VAR is not set',
    );
  });

  it('detects the format from the content when the extension says nothing', async () => {
    expect(formatOf('gateway.conf', '# comment\nroutes: []\n')).toBe('yaml');
    expect(formatOf('gateway.conf', '  {"routes": []}')).toBe('json');
    expect(formatOf('gateway.json', 'routes: []')).toBe('json');
    const yaml = file(
      'gateway.conf',
      '# routes of the shop\nroutes:\n  - { path: /a, upstream: "http://127.0.0.1:1" }\n',
    );
    expect(parseGatewayConfig(await loadConfigFile(yaml, {})).routes).toHaveLength(1);
  });

  it('accepts a route upstream as a URL string or a list of URL strings', () => {
    const config = parseGatewayConfig({
      routes: [
        { path: '/a', upstream: 'http://127.0.0.1:3001' },
        { path: '/b', upstream: ['http://127.0.0.1:3002', 'http://127.0.0.1:3003'] },
      ],
    });
    expect(config.routes[0]?.upstream.urls).toEqual(['http://127.0.0.1:3001']);
    expect(config.routes[1]?.upstream.urls).toHaveLength(2);
    expect(
      issuesOf(() => parseGatewayConfig({ routes: [{ path: '/a', upstream: 'nope' }] }))[0]?.path,
    ).toBe('routes[0].upstream.urls[0]');
  });
});
