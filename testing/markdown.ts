/**
 * Code blocks of Markdown files, for the tests that type-check (docs/code-blocks.test.ts) or run
 * (the package README tests) the documentation's examples.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CodeBlock {
  /** 1-based line of the block's first code line. */
  readonly line: number;
  readonly code: string;
}

/**
 * The ```ts (or ```typescript) blocks of a Markdown file, in order. Blocks whose info string says
 * `fragment` (a snippet that continues an earlier block) are left out. With `section`, only the
 * blocks between that level-2 heading and the next one.
 */
export function tsBlocks(file: string, options: { section?: string } = {}): CodeBlock[] {
  let lines = readFileSync(file, 'utf8').split('\n');
  let offset = 0;
  if (options.section !== undefined) {
    const start = lines.findIndex((l) => l.trimEnd() === `## ${options.section}`);
    if (start === -1) throw new Error(`${file}: no "## ${options.section}" heading`);
    const next = lines.findIndex((l, i) => i > start && l.startsWith('## '));
    lines = lines.slice(start, next === -1 ? undefined : next);
    offset = start;
  }
  const blocks: CodeBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)```(\w+)?\s*(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent = '', lang = '', info = ''] = open;
    let j = i + 1;
    while (j < lines.length && !lines[j]!.trimStart().startsWith('```')) j++;
    if ((lang === 'ts' || lang === 'typescript') && !/\bfragment\b/.test(info)) {
      const code = lines
        .slice(i + 1, j)
        .map((l) => (l.startsWith(indent) ? l.slice(indent.length) : l))
        .join('\n');
      blocks.push({ line: offset + i + 2, code });
    }
    i = j;
  }
  return blocks;
}

const root = join(import.meta.dirname, '..');

/**
 * Runs TypeScript source as a program (`node --import tsx`), resolving `@trellis/*` to the
 * sources through tsconfig.paths.json, so no build is needed.
 */
export function runTs(code: string, name: string) {
  const dir = join(root, '.tmp', 'examples');
  mkdirSync(dir, { recursive: true });
  const file = join(dir, name);
  writeFileSync(file, code);
  return spawnSync(process.execPath, ['--import', 'tsx', file], {
    cwd: root,
    encoding: 'utf8',
    timeout: 30_000,
    env: { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.paths.json') },
  });
}
