// Runs the README's "Health, metrics, tracing and adapters" examples as programs (tsx, sources
// via tsconfig paths), so the copy-paste examples are known to work, not just to type-check.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const readme = readFileSync(join(import.meta.dirname, '..', 'README.md'), 'utf8');
const start = readme.indexOf('## Health, metrics, tracing and adapters');
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

describe('README: health, metrics, tracing and adapters examples', () => {
  it('has the examples this test runs', () => {
    expect(blocks).toHaveLength(3);
  });

  it('runs the Express example and prints what its comments say', () => {
    const r = run(blocks[0] ?? '', 'readme-health-express.ts');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('200 warn\ntrue\ncleanup: close the database pool\nstopped\n');
  });

  it('runs the Fastify example and prints what its comments say', () => {
    const r = run(blocks[1] ?? '', 'readme-health-fastify.ts');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(
      '200 application/health+json\nfastify onClose: close the database pool\nfalse\n',
    );
  });

  it('runs the framework-free example and prints what its comments say', () => {
    const r = run(blocks[2] ?? '', 'readme-health-node.ts');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(`[ 'http_route="/hello/:name"', 'http_route="/batch"' ]\n`);
  });
});
