/**
 * Runs every complete ```ts block of the package README (blocks marked `fragment` are
 * skipped), so the examples stay true to the API. docs/code-blocks.test.ts type-checks them.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { tsBlocks } from '../../../testing/markdown.js';

const blocks = tsBlocks(join(import.meta.dirname, '..', 'README.md'));

const dir = join(import.meta.dirname, '..', '.tmp', 'readme');
mkdirSync(dir, { recursive: true });
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('README examples run', () => {
  it('has examples', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(10);
  });

  for (const block of blocks) {
    it(`README.md:${block.line}`, async () => {
      const file = join(dir, `block_${block.line}.ts`);
      writeFileSync(file, `${block.code}\nexport {};\n`);
      const logs: string[] = [];
      const spy = vi.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
        logs.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      });
      try {
        await import(file);
      } finally {
        spy.mockRestore();
      }
      if (process.env.SHOW_README_LOGS) console.info(block.line, logs);
      expect(logs.length).toBeGreaterThan(0);
    });
  }
});
