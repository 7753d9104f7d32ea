// Runs publint and @arethetypeswrong/cli on every package (after `npm run build`).
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { listPackages, root } from './entries.mjs';

let failed = 0;
const bin = (name) => join(root, 'node_modules', '.bin', name);
for (const { dir, name } of listPackages()) {
  for (const [tool, args] of [
    ['publint', ['--strict']],
    ['attw', ['--pack', '.', '--profile', 'node16', '--format', 'table-flipped']],
  ]) {
    const r = spawnSync(bin(tool), args, { cwd: dir, stdio: 'inherit' });
    if (r.status !== 0) {
      console.error(`✗ ${tool} failed for ${name}`);
      failed++;
    } else {
      console.log(`✓ ${tool} ${name}`);
    }
  }
}
if (failed) process.exit(1);
