// `prepack` of every package (npm pack, npm publish): builds the package and the packages it
// depends on (turbo; cached when nothing changed), then refuses to pack when a file that
// package.json points at (exports, main, module, types, bin) is missing, so a tarball is never
// packed without its dist/ (a fresh clone has none).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, targetsOf } from './entries.mjs';

const dir = process.cwd();
const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));

const turbo = join(root, 'node_modules', '.bin', 'turbo');
const r = spawnSync(turbo, ['run', 'build', `--filter=${pkg.name}`, '--output-logs=errors-only'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
  env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
});
if (r.status !== 0) {
  console.error(`prepack ${pkg.name}: build failed (exit ${r.status ?? r.signal})`);
  process.exit(1);
}

const missing = targetsOf(pkg).filter((f) => !existsSync(join(dir, f)));
if (missing.length > 0) {
  console.error(
    `prepack ${pkg.name}: not packing, these files are missing:\n  ${missing.join('\n  ')}`,
  );
  process.exit(1);
}
