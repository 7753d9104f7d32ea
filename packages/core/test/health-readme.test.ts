// Runs the README's "Health, metrics, tracing and adapters" examples as programs (tsx, sources
// via tsconfig paths), so the copy-paste examples are known to work, not just to type-check.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTs as run, tsBlocks } from '../../../testing/markdown.js';

const blocks = tsBlocks(join(import.meta.dirname, '..', 'README.md'), {
  section: 'Health, metrics, tracing and adapters',
}).map((b) => b.code);

describe('README: health, metrics, tracing and adapters examples', () => {
  it('has the examples this test runs', () => {
    expect(blocks).toHaveLength(4);
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

  it('runs the createDurationHistogram example and prints what its comment says', () => {
    const r = run(blocks[3] ?? '', 'readme-duration-histogram.ts');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toBe('true\n');
  });
});
