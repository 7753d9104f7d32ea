import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defineConfig } from 'vitest/config';

// Tests always run from source: every `@trellis/<pkg>[/<entry>]` import is aliased to the
// entry's source file, read from the same package.json list that builds `exports`.
const root = import.meta.dirname;
const names = readdirSync(join(root, 'packages'));
const alias: { find: RegExp; replacement: string }[] = [];
for (const name of names) {
  const pkg = JSON.parse(readFileSync(join(root, 'packages', name, 'package.json'), 'utf8'));
  for (const [key, src] of Object.entries<string>(pkg.trellis?.entries ?? {})) {
    const spec = key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`;
    const escaped = spec.replace(/[/.]/g, (c: string) => `\\${c}`);
    alias.push({
      find: new RegExp(`^${escaped}$`),
      replacement: resolve(root, 'packages', name, src),
    });
  }
}

export default defineConfig({
  resolve: { alias },
  test: {
    // Engines (etcd, Redis, dnsmasq) are started on demand by testing/engines.ts.
    testTimeout: 20_000,
    hookTimeout: 30_000,
    // An unhandled rejection or uncaught exception fails the test it happened in.
    setupFiles: [resolve(root, 'testing/failOnUnhandled.ts')],
    projects: [
      ...names.map((name) => ({
        extends: true as const,
        test: {
          name,
          root: join(root, 'packages', name),
          include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
          typecheck: { enabled: false },
        },
      })),
      {
        extends: true as const,
        test: { name: 'testing', root: join(root, 'testing'), include: ['**/*.test.ts'] },
      },
      {
        extends: true as const,
        test: {
          name: 'examples',
          root: join(root, 'examples'),
          include: ['**/*.test.ts'],
          exclude: ['**/node_modules/**'],
        },
      },
      {
        extends: true as const,
        test: { name: 'docs', root: join(root, 'docs'), include: ['**/*.test.ts'] },
      },
    ],
  },
});
