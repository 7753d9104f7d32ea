// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests use literal ${ENV} placeholders
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@trellis/core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfigFile } from './loadConfigFile.js';

const dir = mkdtempSync(join(tmpdir(), 'trellis-load-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe('loadConfigFile', () => {
  it('reads JSON and YAML and substitutes ${ENV} in strings only', async () => {
    const env = { SECRET: 's3cr3t', PORT: '9' };
    const yaml = await loadConfigFile(
      file('a.yaml', 'a: "${SECRET}-x"\nb: [ "${PORT}", 3 ]\nc: "$${SECRET}"\n'),
      env,
    );
    expect(yaml).toEqual({ a: 's3cr3t-x', b: ['9', 3], c: '${SECRET}' });
    const json = await loadConfigFile(file('a.json', '{"a":{"b":"${SECRET}"}}'), env);
    expect(json).toEqual({ a: { b: 's3cr3t' } });
  });

  it('names the field whose env var is missing', async () => {
    const err = await loadConfigFile(file('m.yml', 'routes:\n  - path: "${NOPE}"\n'), {}).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    const issues = (err as ConfigError).issues;
    // The unset variable, and with it every other problem of the file (no upstream here).
    expect(issues.filter((i) => i.path === 'routes[0].path')).toEqual([
      { path: 'routes[0].path', message: 'environment variable NOPE is not set' },
    ]);
    expect(issues.some((i) => i.path === 'routes[0].upstream')).toBe(true);
  });

  it('reports unreadable and unparsable files', async () => {
    await expect(loadConfigFile(join(dir, 'none.json'), {})).rejects.toThrow(
      /cannot read \(ENOENT\)/,
    );
    await expect(loadConfigFile(file('b.json', '{'), {})).rejects.toThrow(/not valid JSON/);
    await expect(loadConfigFile(file('b.yaml', 'a: [\n'), {})).rejects.toThrow(/not valid YAML/);
  });
});
