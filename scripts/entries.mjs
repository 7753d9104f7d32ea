// Single source of truth for package entry points.
// Each package lists its entry points once, in package.json -> "trellis": { "entries": { "./x": "src/x.ts" } }.
// This script writes the `exports`, `main`, `module` and `types` fields from that list
// (`--check` fails instead when they are out of date). tsup.config and vitest aliases read the
// same list, so an entry point is never written down twice. It also writes tsconfig.paths.json,
// which maps each entry to its source for typechecking.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Output file stem for an entry key: "." -> "index", "./circuit-breaker" -> "circuit-breaker". */
export function outName(key) {
  return key === '.' ? 'index' : key.replace(/^\.\//, '');
}

/** @returns {{ dir: string, name: string, pkg: any, entries: Record<string,string> }[]} */
export function listPackages() {
  const base = join(root, 'packages');
  return readdirSync(base)
    .filter((d) => existsSync(join(base, d, 'package.json')))
    .map((d) => {
      const dir = join(base, d);
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
      return { dir, name: pkg.name, pkg, entries: pkg.trellis?.entries ?? {} };
    });
}

export function exportsFor(entries) {
  const out = {};
  for (const key of Object.keys(entries)) {
    const n = outName(key);
    out[key] = {
      import: { types: `./dist/${n}.d.ts`, default: `./dist/${n}.js` },
      require: { types: `./dist/${n}.d.cts`, default: `./dist/${n}.cjs` },
    };
  }
  out['./package.json'] = './package.json';
  return out;
}

/** The dist/ files a package.json points at (exports, bin, main, module, types). */
export function targetsOf(pkg) {
  const out = new Set();
  const walk = (v) => {
    if (typeof v === 'string') out.add(v);
    else if (v && typeof v === 'object') for (const x of Object.values(v)) walk(x);
  };
  walk(pkg.exports);
  walk(pkg.bin);
  for (const k of ['main', 'module', 'types']) if (pkg[k]) out.add(pkg[k]);
  return [...out].filter((f) => f.startsWith('./dist/'));
}

function apply(pkg, entries) {
  const next = { ...pkg };
  next.exports = exportsFor(entries);
  if (entries['.']) {
    next.main = './dist/index.cjs';
    next.module = './dist/index.js';
    next.types = './dist/index.d.cts';
  }
  return next;
}

/** tsconfig `paths` so typechecking resolves sibling packages to their sources (no build needed). */
export function pathsConfig(packages) {
  const paths = {};
  for (const { dir, name, entries } of packages) {
    const rel = dir.slice(root.length + 1);
    for (const [key, src] of Object.entries(entries)) {
      paths[key === '.' ? name : `${name}/${key.slice(2)}`] = [`./${rel}/${src}`];
    }
  }
  return `${JSON.stringify({ compilerOptions: { paths } }, null, 2)}\n`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const check = process.argv.includes('--check');
  let stale = 0;
  const pathsFile = join(root, 'tsconfig.paths.json');
  const paths = pathsConfig(listPackages());
  if (!existsSync(pathsFile) || readFileSync(pathsFile, 'utf8') !== paths) {
    if (check) {
      console.error('tsconfig.paths.json is out of date; run `npm run gen`.');
      stale++;
    } else {
      writeFileSync(pathsFile, paths);
      console.log('tsconfig.paths.json written');
    }
  }
  for (const { dir, pkg, entries, name } of listPackages()) {
    const file = join(dir, 'package.json');
    const before = readFileSync(file, 'utf8');
    // Keep key order stable: rebuild with the generated fields in place.
    const updated = apply(pkg, entries);
    const text = `${JSON.stringify(updated, null, 2)}\n`;
    if (text !== before) {
      if (check) {
        console.error(`${name}: package.json exports are out of date; run \`npm run gen\`.`);
        stale++;
      } else {
        writeFileSync(file, text);
        console.log(`${name}: exports written (${Object.keys(entries).length} entries)`);
      }
    }
  }
  if (stale) process.exit(1);
}
