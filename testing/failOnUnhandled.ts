// Vitest setup file (vitest.config.ts `setupFiles`): an unhandled rejection or an uncaught
// exception while a test runs fails that test.
//
// Vitest 4 on its own already catches both and fails the run (exit code 1, "Unhandled Errors"),
// but it reports every test as passed and only guesses which one was running. This makes the
// test during which the error surfaced fail, with the error itself.
import { afterEach } from 'vitest';
import { describeThrown } from '../packages/core/src/faults/describeThrown.js';

// A worker process may run many test files, each loading this module afresh: install the
// listeners once per process and share what they record.
const key = Symbol.for('trellis.test.unhandled');
const g = globalThis as typeof globalThis & { [key]?: unknown[] };
let seen = g[key];
if (seen === undefined) {
  const list: unknown[] = [];
  seen = list;
  g[key] = list;
  const record = (reason: unknown) => {
    list.push(reason);
  };
  process.on('unhandledRejection', record);
  process.on('uncaughtException', record);
}
const recorded = seen;

afterEach(() => {
  // Let rejections created at the very end of the test reach the handler first.
  return new Promise<void>((resolve, reject) => {
    setImmediate(() => {
      if (recorded.length === 0) {
        resolve();
        return;
      }
      const errors = recorded.splice(0);
      const first = errors[0];
      const error = new Error(
        `${errors.length} unhandled rejection(s) or uncaught exception(s) during this test: ${errors.map(describeThrown).join('; ')}`,
        { cause: first },
      );
      reject(error);
    });
  });
});
