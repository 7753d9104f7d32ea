// Runs the README's "Typed client" examples as programs (tsx, sources via tsconfig paths), so
// the copy-paste examples are known to work, not just to type-check.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTs as run, tsBlocks } from '../../../testing/markdown.js';

const blocks = tsBlocks(join(import.meta.dirname, '..', 'README.md'), {
  section: 'Typed client',
}).map((b) => b.code);

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
