// Runs the README's "Typed client" examples as programs (tsx, sources via tsconfig paths), so
// the copy-paste examples are known to work, not just to type-check.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
// The "Typed client" section: from its heading to the next level-2 heading.
const start = readme.indexOf('\n## Typed client');
const end = readme.indexOf('\n## ', start + 1);
const section = readme.slice(start, end === -1 ? undefined : end);
const blocks = [...section.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] as string);

function run(code: string, name: string) {
  const dir = join(root, '.tmp');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, code);
  return spawnSync(process.execPath, ['--import', 'tsx', file], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'packages/core/tsconfig.json') },
  });
}

describe('README: Typed client examples', () => {
  it('has the examples this test runs', () => {
    expect(blocks).toHaveLength(2);
  });

  it('runs the Express example and prints what its comments say', () => {
    const result = run(blocks[0] ?? '', 'readme-typed-client-express.ts');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toBe("201 { item: 'lamp', reservationId: 'r-42-1' }\n404\n");
  });

  it('runs the discovery + policies example to completion', () => {
    const result = run(blocks[1] ?? '', 'readme-typed-client-discovery.ts');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
