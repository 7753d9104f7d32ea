// Runs the README's "Overload protection" examples as programs (tsx, sources via tsconfig paths).
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTs as run, tsBlocks } from '../../../testing/markdown.js';

const blocks = tsBlocks(join(import.meta.dirname, '..', 'README.md'), {
  section: 'Overload protection',
}).map((b) => b.code);

describe('README: overload protection examples', () => {
  it('has the examples this test runs', () => {
    expect(blocks).toHaveLength(2);
  });

  it('sheds a request with no time left', () => {
    const r = run(blocks[0] ?? '', 'readme-overload-shed.ts');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('200\n503 deadline TRELLIS_SHED\n');
  });

  it('throttles a client whose upstream sheds', () => {
    const r = run(blocks[1] ?? '', 'readme-overload-throttle.ts');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('true 0\n');
  });
});
