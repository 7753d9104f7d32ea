// The result file of a CI check that is not a vitest suite (the pack-install smoke, the publish
// dry run): `{ check, passed, failed, failures }` in .tmp/checks/<check>.json. scripts/totals.mjs
// adds its counts to the tests' totals.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './entries.mjs';

export const checksDir = join(root, '.tmp', 'checks');

/** Collects named cases; `finish()` prints `N passed, N failed`, writes the file, sets the exit code. */
export function checkRun(check) {
  const failures = [];
  let passed = 0;
  return {
    /** Runs one case; a thrown error (or a rejected promise) fails it with its message. */
    async test(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`  ✓ ${name}`);
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        failures.push({ name, message });
        console.log(`  ✗ ${name}\n      ${message.split('\n').join('\n      ')}`);
      }
    },
    finish() {
      mkdirSync(checksDir, { recursive: true });
      const file = join(checksDir, `${check}.json`);
      const result = { check, passed, failed: failures.length, failures };
      writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
      console.log(`${check}: ${passed} passed, ${failures.length} failed (${file})`);
      if (failures.length > 0 || passed === 0) process.exitCode = 1;
      return result;
    },
  };
}
