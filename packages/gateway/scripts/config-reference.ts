/**
 * Writes docs/gateway-config.md from the gateway's zod config schema.
 *
 *   npx tsx --tsconfig packages/gateway/tsconfig.json packages/gateway/scripts/config-reference.ts [--check]
 *
 * `--check` exits 1 (and writes nothing) when the file is out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gatewayConfigSchema } from '../src/config/gatewayConfig.js';
import { renderConfigReference } from './renderConfigReference.js';

const target = join(import.meta.dirname, '../../../docs/gateway-config.md');

export function render(): string {
  return renderConfigReference(gatewayConfigSchema, {
    title: 'Gateway configuration reference',
    intro: [
      'Every field of the `@trellis/gateway` config (`createGateway(config)`, or the file given to',
      '`trellis-gateway --config`). `routes[].x` is a field of each route; `<name>` is a key you choose.',
      'Fields marked (required) have no default. See [gateway.md](gateway.md) for how they work together.',
    ].join('\n'),
  });
}

if (process.argv[1] && import.meta.filename === process.argv[1]) {
  const text = render();
  if (process.argv.includes('--check')) {
    let current = '';
    try {
      current = readFileSync(target, 'utf8');
    } catch {}
    if (current !== text) {
      process.stderr.write(
        'docs/gateway-config.md is out of date: run packages/gateway/scripts/config-reference.ts\n',
      );
      process.exit(1);
    }
    process.stdout.write('docs/gateway-config.md is up to date\n');
  } else {
    writeFileSync(target, text);
    process.stdout.write(`wrote ${target}\n`);
  }
}
