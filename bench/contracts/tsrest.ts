/**
 * The ts-rest peer for bench/contracts/main.ts (`BENCH_TSREST=1`). `@ts-rest/express` 3.52
 * accepts only Express 4 and zod 3 (its peer ranges), which conflict with the workspace (zod 4,
 * Express 5), so it is installed at run time into a throwaway directory, `.tmp/tsrest`, with its
 * own package.json (never into the workspace), and its app is plain JavaScript run from there.
 * The ratio against it also compares zod 3 with zod 4.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const TSREST_DIR = join(import.meta.dirname, '..', '..', '.tmp', 'tsrest');

const PACKAGES = [
  '@ts-rest/express@3.52.1',
  '@ts-rest/core@3.52.1',
  'express@4.22.3',
  'zod@3.25.76',
];

/** The same route as apps.ts, written with ts-rest: contract, router, zod 3 schemas. */
const APP = `'use strict';
const express = require('express');
const { z } = require('zod');
const { initContract } = require('@ts-rest/core');
const { createExpressEndpoints, initServer } = require('@ts-rest/express');

const c = initContract();
const contract = c.router({
  addItem: {
    method: 'POST',
    path: '/shops/:shop/items',
    pathParams: z.object({ shop: z.string().min(1).max(32) }),
    query: z.object({ limit: z.coerce.number().int().min(1).max(100).optional() }),
    body: z.object({ sku: z.string().min(1).max(16), qty: z.number().int().min(1).max(100), note: z.string().max(64).optional() }),
    responses: { 201: z.object({ shop: z.string(), sku: z.string(), qty: z.number(), limit: z.number() }) },
  },
});
const s = initServer();
const router = s.router(contract, {
  addItem: async ({ params, query, body }) => ({
    status: 201,
    body: { shop: params.shop, sku: body.sku, qty: body.qty, limit: query.limit ?? 20 },
  }),
});
const app = express();
app.use(express.json());
createExpressEndpoints(contract, router, app, { responseValidation: true });
const server = app.listen(0, '127.0.0.1', () => {
  process.send({ port: server.address().port });
});
process.on('message', (m) => {
  if (m === 'cpu') process.send({ cpu: process.cpuUsage() });
});
process.on('disconnect', () => process.exit(0));
`;

/** Installs ts-rest and its peers into `.tmp/tsrest` (once) and writes its app; returns its path. */
export function prepareTsRest(log: (line: string) => void): string {
  mkdirSync(TSREST_DIR, { recursive: true });
  const pkg = join(TSREST_DIR, 'package.json');
  if (!existsSync(join(TSREST_DIR, 'node_modules', '@ts-rest', 'express'))) {
    writeFileSync(pkg, `${JSON.stringify({ name: 'tsrest-bench', private: true }, null, 2)}\n`);
    log(`installing ${PACKAGES.join(' ')} into ${TSREST_DIR} ...`);
    execFileSync(
      'npm',
      ['install', '--prefix', TSREST_DIR, '--no-audit', '--no-fund', ...PACKAGES],
      {
        cwd: TSREST_DIR,
        stdio: ['ignore', 'ignore', 'inherit'],
      },
    );
  }
  const app = join(TSREST_DIR, 'app.cjs');
  writeFileSync(app, APP);
  return app;
}
