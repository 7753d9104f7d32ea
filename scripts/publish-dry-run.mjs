// `npm run publish:dry-run`: `npm publish --dry-run` of every package, checked (CI runs it once,
// on Node 20; `npm run release` runs it before publishing). For each package it asserts what a
// dry run alone does not catch: the tarball lists every dist/ file package.json points at
// (exports, bin, main, types) and the README, no sources or tests, and npm would publish a scoped
// package with public access (`publishConfig.access`; without it the first publish of a scoped
// package fails). Prints `N passed, N failed` and writes .tmp/checks/publish-dry-run.json.
//
//   node scripts/publish-dry-run.mjs              # builds first (each package's prepack)
import { spawnSync } from 'node:child_process';
import { checkRun } from './checkResult.mjs';
import { listPackages, targetsOf } from './entries.mjs';

const run = checkRun('publish-dry-run');
console.log('npm publish --dry-run of every package');
for (const { dir, name, pkg } of listPackages()) {
  await run.test(`${name}: npm publish --dry-run lists its dist files, public access`, () => {
    if (pkg.private) throw new Error('package.json says "private": true');
    if (name.startsWith('@') && pkg.publishConfig?.access !== 'public')
      throw new Error('scoped package without publishConfig.access: "public"');
    const r = spawnSync('npm', ['publish', '--dry-run', '--json'], {
      cwd: dir,
      encoding: 'utf8',
    });
    if (r.status !== 0)
      throw new Error(`npm publish --dry-run exited ${r.status ?? r.signal}\n${r.stderr}`);
    if (!/public access/.test(r.stderr))
      throw new Error(`npm did not say it would publish with public access:\n${r.stderr}`);
    const json = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
    const info = json[name] ?? json;
    const files = new Set((info.files ?? []).map((f) => f.path));
    const missing = targetsOf(pkg)
      .map((f) => f.replace(/^\.\//, ''))
      .filter((f) => !files.has(f));
    if (!files.has('README.md')) missing.push('README.md');
    if (missing.length > 0) throw new Error(`the tarball lacks: ${missing.join(', ')}`);
    const stray = [...files].filter((f) => /^(src|test)\/|\.test\.|tsconfig/.test(f));
    if (stray.length > 0)
      throw new Error(`the tarball carries sources or tests: ${stray.join(', ')}`);
  });
}
run.finish();
