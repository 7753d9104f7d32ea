// The pack-install smoke (CI runs it once, on Node 20): what a user gets from the tarballs.
// Packs every package (`npm pack`, each package's prepack builds it), installs ALL the tarballs
// into a fresh project in a temporary directory outside the repository (with express, zod and
// the type packages from the registry, as a user would), then runs the same smoke program as
// ESM, as CommonJS, and as TypeScript compiled with the repository's `tsc` (ESM .ts and CJS
// .cts, strict, nodenext). Each program imports every package and every subpath the packages
// export, and checks real behaviour: an Express app with the core adapter's /health on port 0,
// a typed client through staticDiscovery, a retry + circuit breaker + timeout pipeline answering
// a request, an HttpError that is `instanceof` TrellisError, and a gateway proxying to the app.
//
//   npm run pack:smoke                  (node scripts/pack-smoke.mjs [--keep])
//
// Prints `pack-smoke: N passed, N failed` and writes .tmp/checks/pack-smoke.json for
// scripts/totals.mjs.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkRun } from './checkResult.mjs';
import { listPackages, root } from './entries.mjs';
import { packAll } from './pack.mjs';

const keep = process.argv.includes('--keep');
const run = checkRun('pack-smoke');
const work = mkdtempSync(join(tmpdir(), 'trellis-pack-smoke-'));
const app = join(work, 'app');

function sh(cmd, args, cwd, extra = {}) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', ...extra });
  if (r.status !== 0)
    throw new Error(
      `${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\n${(r.stdout ?? '').slice(-3000)}${(r.stderr ?? '').slice(-3000)}`,
    );
  return r.stdout;
}

// Every specifier a user can import: "@trellis/core", "@trellis/core/express", ...
const specifiers = listPackages().flatMap(({ name, entries }) =>
  Object.keys(entries).map((k) => (k === '.' ? name : `${name}/${k.slice(2)}`)),
);

// The smoke program. `IMPORTS` is replaced per module system; the body is the same.
const body = (lang) => `
const subpaths = ${JSON.stringify(specifiers)};
async function main()${lang === 'ts' ? ': Promise<void>' : ''} {
  for (const s of subpaths) {
    const m = await load(s);
    // Loads (resolves through the exports map to a built file); @trellis/outbox may still be empty.
    assert.equal(typeof m, 'object', s + ' did not load');
  }
  const health = createHealth({ serviceId: 'smoke', signals: false, exit: false });
  const app = express();
  app.disable('x-powered-by');
  app.use(trellis({ health }));
  app.get('/items/:id', (req${lang === 'ts' ? ': express.Request<{ id: string }>' : ''}, res${lang === 'ts' ? ': express.Response' : ''}) => {
    res.json({ id: req.params.id, n: 1 });
  });
  const server = app.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const base = 'http://127.0.0.1:' + (server.address()${lang === 'ts' ? ' as AddressInfo' : ''}).port;

  const probe = await fetch(base + '/health');
  assert.equal(probe.status, 200, '/health answers 200');
  assert.match(probe.headers.get('content-type') ?? '', /health\\+json/);

  const breaker = circuitBreaker();
  const client = createClient({
    service: 'items',
    resolver: staticDiscovery({ services: { items: [base] } }),
    balancer: roundRobin(),
    endpoints: {
      item: {
        method: 'GET',
        path: '/items/:id',
        response: z.object({ id: z.string(), n: z.number() }),
      },
      missing: { method: 'GET', path: '/nope', response: z.object({}) },
    },
    policy: pipeline(retry({ maxAttempts: 2 }), breaker, timeout(5000)),
  });
  const item = await client.item({ params: { id: 'a1' } });
  assert.deepEqual(item, { id: 'a1', n: 1 });
  assert.equal(breaker.state, 'closed');
  await assert.rejects(client.missing({}), (err${lang === 'ts' ? ': unknown' : ''}) => {
    assert.ok(err instanceof HttpError, 'an HttpError');
    assert.ok(err instanceof TrellisError, 'a TrellisError');
    assert.equal(err.status, 404);
    return true;
  });

  const gateway = createGateway({
    routes: [{ path: '/api', stripPrefix: true, upstream: { urls: [base] } }],
  });
  const { port } = await gateway.listen(0, '127.0.0.1');
  const proxied = await fetch('http://127.0.0.1:' + port + '/api/items/g1');
  assert.equal(proxied.status, 200, 'the gateway proxies to the app');
  assert.deepEqual(await proxied.json(), { id: 'g1', n: 1 });

  await gateway.close();
  await client.close();
  health.close();
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  console.log('SMOKE OK');
}
main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
`;

const esmImports = `import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createClient, createHealth, HttpError, TrellisError } from '@trellis/core';
import { trellis } from '@trellis/core/express';
import { roundRobin, staticDiscovery } from '@trellis/discovery';
import { createGateway } from '@trellis/gateway';
import { circuitBreaker, pipeline, retry, timeout } from '@trellis/resilience';
import express from 'express';
import { z } from 'zod';
const load = (s) => import(s);
`;
const cjsImports = `'use strict';
const assert = require('node:assert/strict');
const { once } = require('node:events');
const { createClient, createHealth, HttpError, TrellisError } = require('@trellis/core');
const { trellis } = require('@trellis/core/express');
const { roundRobin, staticDiscovery } = require('@trellis/discovery');
const { createGateway } = require('@trellis/gateway');
const { circuitBreaker, pipeline, retry, timeout } = require('@trellis/resilience');
const express = require('express');
const { z } = require('zod');
const load = async (s) => require(s);
`;
const tsImports = (cjs) => `import assert from 'node:assert/strict';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createClient, createHealth, HttpError, TrellisError } from '@trellis/core';
import { trellis } from '@trellis/core/express';
import { roundRobin, staticDiscovery } from '@trellis/discovery';
import { createGateway } from '@trellis/gateway';
import { circuitBreaker, pipeline, retry, timeout } from '@trellis/resilience';
import express from 'express';
import { z } from 'zod';
const load = async (s: string): Promise<Record<string, unknown>> => ${cjs ? 'require(s)' : 'import(s)'};
`;

console.log(`pack-install smoke in ${work}`);
let installed = false;
await run.test('npm pack: every package packs with its dist files', () => {
  const packed = packAll(join(work, 'packs'), { log: () => {} });
  for (const p of packed) {
    if (!p.files.some((f) => f.startsWith('dist/')))
      throw new Error(`${p.name}: the tarball has no dist/ files`);
  }
  writeFileSync(join(work, 'tarballs.json'), JSON.stringify(packed.map((p) => p.file)));
});

await run.test('npm install of the tarballs into a fresh project outside the repo', () => {
  const tarballs = JSON.parse(readFileSync(join(work, 'tarballs.json'), 'utf8'));
  sh('mkdir', ['-p', app], work);
  writeFileSync(
    join(app, 'package.json'),
    `${JSON.stringify({ name: 'trellis-smoke-app', private: true, version: '1.0.0', type: 'module' }, null, 2)}\n`,
  );
  sh(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      ...tarballs,
      'express@5',
      'zod@4',
      '@types/express@5',
      '@types/node@20',
      // The optional peers, which a user installs with the subpath that needs them
      // (@trellis/resilience/opossum, /p-retry, @trellis/core/idempotency/redis, /postgres, ...).
      'fastify@5',
      'opossum@9',
      'p-retry@7',
      'ioredis@5',
      'pg@8',
      '@electric-sql/pglite',
    ],
    app,
  );
  const lock = JSON.parse(readFileSync(join(app, 'package-lock.json'), 'utf8'));
  for (const { name } of listPackages()) {
    const entry = lock.packages[`node_modules/${name}`];
    if (!entry?.resolved?.startsWith('file:'))
      throw new Error(`${name} was not installed from its tarball: ${JSON.stringify(entry)}`);
  }
  installed = true;
});

const cases = [
  [
    'ESM (.mjs): import every subpath, client + breaker + health + gateway answer',
    'smoke.mjs',
    `${esmImports}${body('js')}`,
  ],
  [
    'CommonJS (.cjs): require every subpath, client + breaker + health + gateway answer',
    'smoke.cjs',
    `${cjsImports}${body('js')}`,
  ],
];
for (const [name, file, text] of cases) {
  await run.test(name, () => {
    if (!installed) throw new Error('not run: the install failed');
    writeFileSync(join(app, file), text);
    const out = sh(process.execPath, [file], app, { timeout: 60_000 });
    if (!out.includes('SMOKE OK')) throw new Error(`no SMOKE OK in the output:\n${out}`);
  });
}

await run.test(
  'TypeScript (strict, nodenext, ESM .ts + CJS .cts): tsc compiles against the published types',
  () => {
    if (!installed) throw new Error('not run: the install failed');
    writeFileSync(join(app, 'smoke-ts.ts'), `${tsImports(false)}${body('ts')}`);
    writeFileSync(join(app, 'smoke-cts.cts'), `${tsImports(true)}${body('ts')}`);
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'nodenext',
          moduleResolution: 'nodenext',
          strict: true,
          esModuleInterop: true,
          skipLibCheck: false,
          outDir: 'out',
          types: ['node'],
        },
        files: ['smoke-ts.ts', 'smoke-cts.cts'],
      }),
    );
    sh(join(root, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.json'], app);
  },
);
for (const file of ['out/smoke-ts.js', 'out/smoke-cts.cjs']) {
  await run.test(
    `TypeScript compiled (${file}): client + breaker + health + gateway answer`,
    () => {
      if (!installed) throw new Error('not run: the install failed');
      const out = sh(process.execPath, [file], app, { timeout: 60_000 });
      if (!out.includes('SMOKE OK')) throw new Error(`no SMOKE OK in the output:\n${out}`);
    },
  );
}

await run.test(
  'the recipe install: only the @trellis/core + @trellis/resilience tarballs, together',
  () => {
    // What docs/getting-started.md tells a user to install: only some tarballs, together.
    const tarballs = JSON.parse(readFileSync(join(work, 'tarballs.json'), 'utf8'));
    const some = tarballs.filter((t) => /trellis-(core|resilience)-/.test(t));
    const dir = join(work, 'partial');
    sh('mkdir', ['-p', dir], work);
    writeFileSync(join(dir, 'package.json'), '{"name":"partial","private":true,"type":"module"}\n');
    sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...some, 'zod@4'], dir);
    writeFileSync(
      join(dir, 'check.mjs'),
      "import { retry } from '@trellis/resilience'; import { createHealth } from '@trellis/core';\n" +
        "if (typeof retry !== 'function' || typeof createHealth !== 'function') process.exit(1);\n",
    );
    sh(process.execPath, ['check.mjs'], dir);
  },
);

const result = run.finish();
if (!keep && result.failed === 0) rmSync(work, { recursive: true, force: true });
else console.log(`kept ${work}`);
