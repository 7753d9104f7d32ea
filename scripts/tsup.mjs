// Shared tsup configuration: entry points come from package.json "trellis.entries".
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { outName } from './entries.mjs';

export function trellisTsup(configUrl, overrides = {}) {
  const dir = fileURLToPath(new URL('.', configUrl));
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
  const entry = {};
  for (const [key, src] of Object.entries(pkg.trellis?.entries ?? {})) entry[outName(key)] = src;
  // Executables (package.json "bin") are built too, but are not part of `exports`.
  for (const [name, src] of Object.entries(pkg.trellis?.bin ?? {})) entry[name] = src;
  return {
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    sourcemap: true,
    splitting: true,
    treeshake: true,
    target: 'node20',
    platform: 'node',
    shims: false,
    tsconfig: 'tsconfig.build.json',
    ...overrides,
  };
}
