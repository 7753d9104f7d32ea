// `npm start`: builds the packages (turbo; cached after the first run), then runs the example
// system (examples/shop) on its embedded defaults until Ctrl-C. Arguments go to the example:
//   npm start               the shop on ports 8080-8084 (SHOP_PORT moves them)
//   npm start -- chaos      the chaos demo (same as `npm run demo:chaos`)
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './entries.mjs';

const [mode = 'shop'] = process.argv.slice(2);
const entries = {
  shop: 'main.ts',
  chaos: 'chaos.ts',
  distributed: 'distributed.ts',
};
const entry = entries[mode];
if (!entry) {
  console.error(`unknown mode "${mode}"; one of: ${Object.keys(entries).join(', ')}`);
  process.exit(2);
}

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

const child = spawn(
  process.execPath,
  ['--import', 'tsx', join(root, 'examples', 'shop', 'src', entry), ...process.argv.slice(3)],
  { stdio: 'inherit', cwd: root },
);
// The child gets Ctrl-C from the terminal itself (same process group); forward SIGTERM.
process.on('SIGINT', () => {});
process.on('SIGTERM', () => child.kill('SIGTERM'));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
