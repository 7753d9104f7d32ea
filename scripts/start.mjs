// `npm start`: runs the example system (examples/shop) on its embedded defaults.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { root } from './entries.mjs';

const entry = join(root, 'examples', 'shop', 'start.mjs');
if (!existsSync(entry)) {
  console.error('The example system (examples/shop) is not built yet; see issue 7.');
  process.exit(1);
}
const child = spawn(process.execPath, [entry, ...process.argv.slice(2)], { stdio: 'inherit' });
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
