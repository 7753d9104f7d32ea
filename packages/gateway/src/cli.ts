#!/usr/bin/env node
/**
 * `trellis-gateway --config gateway.yaml [--check] [--port N] [--host H] [--log-level L]`.
 * See docs/gateway.md#cli.
 */
import { runCli } from './cli/runCli.js';

runCli(process.argv.slice(2)).then(
  (result) => {
    if (typeof result === 'number') process.exitCode = result;
  },
  (err: unknown) => {
    process.stderr.write(`trellis-gateway: ${(err as Error).stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
