// Runs the README's "Typed client" example as a program (tsx, sources via tsconfig paths), so
// the copy-paste example is known to work, not just to type-check.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');

describe('README: Typed client example', () => {
  it('runs and prints what its comments say', () => {
    const section = readme.slice(readme.indexOf('## Typed client'));
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    expect(code).toBeDefined();
    const dir = join(root, '.tmp');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'readme-typed-client.ts');
    writeFileSync(file, code as string);
    const run = spawnSync(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'packages/core/tsconfig.json') },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toBe("201 { item: 'lamp', reservationId: 'r-42-1' }\n404\n");
  });
});
