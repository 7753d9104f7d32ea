// Prints the totals of one or more vitest JSON reports, plus the result files of the checks that
// are not vitest suites (scripts/checkResult.mjs: the pack-install smoke, the publish dry run,
// `{ check, passed, failed }`), as a line of its own:
//   N passed, N failed, N skipped
// Exits 1 when any test failed, a suite failed to load, or a report is missing.
import { existsSync, readFileSync } from 'node:fs';

let passed = 0;
let failed = 0;
let skipped = 0;
let broken = 0;
for (const file of process.argv.slice(2)) {
  if (!existsSync(file)) {
    console.error(`missing test report: ${file}`);
    broken++;
    continue;
  }
  const report = JSON.parse(readFileSync(file, 'utf8'));
  if (typeof report.check === 'string') {
    console.log(`${report.check}: ${report.passed} passed, ${report.failed} failed`);
    passed += report.passed ?? 0;
    failed += report.failed ?? 0;
    continue;
  }
  passed += report.numPassedTests ?? 0;
  failed += report.numFailedTests ?? 0;
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  // A file that fails to import has no tests but a failed suite.
  for (const suite of report.testResults ?? []) {
    if (suite.status === 'failed' && (suite.assertionResults ?? []).length === 0) {
      console.error(`suite failed to run: ${suite.name}: ${suite.message ?? ''}`);
      broken++;
    }
  }
}
failed += broken;
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
if (failed > 0 || passed === 0) process.exit(1);
