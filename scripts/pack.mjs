// `npm run pack`: builds every package and writes an installable tarball of each into
// dist-packs/ (ignored by git), then prints the one `npm install` that puts them into an app:
//
//   npm run pack                        # all packages
//   npm run pack -- --out /some/dir     # somewhere else
//
// Until the packages are on the npm registry, this is how an app outside the repository
// installs Trellis. Install the tarballs you need together in one command (they depend on
// each other, e.g. @trellis/resilience on @trellis/core, which npm cannot find on the registry).
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { listPackages, root } from './entries.mjs';

export const defaultPackDir = join(root, 'dist-packs');

/**
 * Packs every package (each `npm pack` runs the package's prepack build) into `outDir`.
 * @returns {{ name: string, file: string, files: string[] }[]}
 */
export function packAll(outDir = defaultPackDir, { log = console.log } = {}) {
  mkdirSync(outDir, { recursive: true });
  for (const f of readdirSync(outDir)) if (f.endsWith('.tgz')) rmSync(join(outDir, f));
  // One turbo build of everything first, so each prepack below finds its build cached.
  const build = spawnSync(
    join(root, 'node_modules', '.bin', 'turbo'),
    ['run', 'build', '--output-logs=errors-only'],
    { cwd: root, stdio: 'inherit', env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1' } },
  );
  if (build.status !== 0) throw new Error(`build failed (exit ${build.status ?? build.signal})`);
  const packed = [];
  for (const { dir, name } of listPackages()) {
    const r = spawnSync('npm', ['pack', '--json', '--pack-destination', outDir], {
      cwd: dir,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`npm pack ${name} failed (exit ${r.status ?? r.signal})`);
    // prepack's own output may precede the JSON array.
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('[')));
    const info = json[0];
    packed.push({
      name,
      file: join(outDir, info.filename),
      files: info.files.map((f) => f.path),
    });
    log(
      `packed ${name} (${info.files.length} files) -> ${relative(root, join(outDir, info.filename))}`,
    );
  }
  return packed;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const at = process.argv.indexOf('--out');
  const outDir = at > 0 ? resolve(process.argv[at + 1] ?? '') : defaultPackDir;
  const packed = packAll(outDir);
  console.log(
    `\nInstall them into your app (from the app's folder), all in one command:\n\n  npm install ${packed
      .map((p) => p.file)
      .join(' ')}\n`,
  );
}
