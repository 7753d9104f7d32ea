/**
 * Every ```ts code block in the docs and READMEs is type-checked against the sources, so the
 * docs cannot rot. A block must be a complete module (its own imports). Blocks whose info
 * string is `ts fragment` (a snippet that continues an earlier block) are skipped.
 */
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { type CodeBlock, tsBlocks } from '../testing/markdown.js';

const root = join(import.meta.dirname, '..');

function markdownFiles(): string[] {
  const out: string[] = [join(root, 'README.md')];
  const walk = (dir: string) => {
    if (!existsSync(dir)) return;
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.name === 'node_modules' || e.name === 'dist' || e.name.startsWith('.')) continue;
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.md')) out.push(p);
    }
  };
  walk(join(root, 'docs'));
  walk(join(root, 'examples'));
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const readme = join(root, 'packages', pkg, 'README.md');
    if (existsSync(readme)) out.push(readme);
  }
  return out.filter((f) => existsSync(f));
}

interface Block extends CodeBlock {
  doc: string;
}

const files = markdownFiles();
const blocks: Block[] = files.flatMap((doc) => tsBlocks(doc).map((b) => ({ ...b, doc })));
const outDir = join(root, '.tmp', 'doc-blocks');

function typecheck(): Map<string, string[]> {
  rmSync(outDir, { recursive: true, force: true });
  mkdirSync(outDir, { recursive: true });
  const fileFor = new Map<string, Block>();
  blocks.forEach((b, n) => {
    const name = join(outDir, `${relative(root, b.doc).replace(/[/\\.]/g, '_')}_${b.line}_${n}.ts`);
    // Top-level await is fine in an ES module; `export {}` makes every block a module.
    writeFileSync(name, `${b.code}\nexport {};\n`);
    fileFor.set(name, b);
  });
  const base = ts.readConfigFile(join(root, 'tsconfig.base.json'), ts.sys.readFile).config;
  const paths = ts.readConfigFile(join(root, 'tsconfig.paths.json'), ts.sys.readFile).config;
  const parsed = ts.parseJsonConfigFileContent(
    {
      compilerOptions: {
        ...base.compilerOptions,
        ...paths.compilerOptions,
        noEmit: true,
        noUnusedLocals: false,
      },
    },
    ts.sys,
    root,
  );
  const program = ts.createProgram([...fileFor.keys()], {
    ...parsed.options,
    module: ts.ModuleKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  });
  const problems = new Map<string, string[]>();
  for (const d of ts.getPreEmitDiagnostics(program)) {
    const file = d.file?.fileName;
    const block = file ? fileFor.get(file) : undefined;
    const where = block
      ? `${relative(root, block.doc)}:${block.line + (d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start).line : 0)}`
      : (file ?? 'global');
    const key = block ? block.doc : 'global';
    const list = problems.get(key) ?? [];
    list.push(`${where}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    problems.set(key, list);
  }
  return problems;
}

describe('docs code blocks', () => {
  const problems = blocks.length > 0 ? typecheck() : new Map<string, string[]>();

  it('found code blocks to check', () => {
    expect(blocks.length).toBeGreaterThan(0);
  });

  it('has no diagnostics outside the blocks', () => {
    expect(problems.get('global') ?? []).toEqual([]);
  });

  for (const doc of files) {
    const count = blocks.filter((b) => b.doc === doc).length;
    if (count === 0) continue;
    it(`${relative(root, doc)}: ${count} block(s) type-check`, () => {
      expect(problems.get(doc) ?? []).toEqual([]);
    });
  }
});
