// `npm start`: builds the packages (turbo; cached after the first run), then runs the example
// system (examples/shop) on its embedded defaults until Ctrl-C. Arguments go to the example:
//   npm start               the shop on ports 8080-8084 (SHOP_PORT moves them)
//   npm start -- chaos      the chaos demo (same as `npm run demo:chaos`)
//   npm start -- consistency  the outbox + idempotency demo with processes killed (`npm run demo:consistency`)
//   ... -- --from-source    skip the build; run against the TypeScript sources (as the tests do)
//
// Ctrl-C: the terminal sends SIGINT to the whole foreground process group, so the example gets
// it directly (and stops in order, exiting 0); this process only waits for it and exits with its
// code. `start:distributed` runs this script through `exec`, because the `sh -c` npm runs a
// script in would otherwise die of the same SIGINT and npm would report 130 however cleanly the
// example stopped.
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './entries.mjs';

const fromSource = process.argv.includes('--from-source');
const [mode = 'shop', ...rest] = process.argv.slice(2).filter((a) => a !== '--from-source');
const entries = {
  shop: 'main.ts',
  chaos: 'chaos.ts',
  distributed: 'distributed.ts',
  consistency: 'consistency.ts',
};
const entry = entries[mode];
if (!entry) {
  console.error(`unknown mode "${mode}"; one of: ${Object.keys(entries).join(', ')}`);
  process.exit(2);
}

if (!fromSource) {
  console.log('Building the Trellis packages (cached after the first run)...');
  const build = spawnSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' },
  });
  if (build.status !== 0) {
    console.error('build failed');
    process.exit(build.status ?? 1);
  }
}

const child = spawn(
  process.execPath,
  ['--import', 'tsx', join(root, 'examples', 'shop', 'src', entry), ...rest],
  {
    stdio: 'inherit',
    cwd: root,
    // From source: tsx maps every @trellis/* import to its .ts file through tsconfig.paths.json.
    env: fromSource
      ? { ...process.env, TSX_TSCONFIG_PATH: join(root, 'tsconfig.paths.json') }
      : process.env,
  },
);
// The child gets Ctrl-C from the terminal itself (same process group); forward SIGTERM.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
