/** The complete annotated config in docs/gateway.md is a valid gateway config. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseGatewayConfig } from '../src/index.js';

const doc = readFileSync(join(import.meta.dirname, '../../../docs/gateway.md'), 'utf8');

describe('docs/gateway.md', () => {
  it('the complete annotated config validates', () => {
    const section = doc.slice(doc.indexOf('## Complete annotated config'));
    const block = /```yaml\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toBeDefined();
    const config = parseGatewayConfig(parse(block as string));
    expect(config.routes.map((r) => r.name)).toEqual([
      'users',
      'orders',
      'files',
      'events',
      'chat',
    ]);
    expect(config.routes[0]?.bulkhead).toEqual({ limit: 200, queue: 50 });
    expect(config.routes[3]?.timeouts.streaming).toBe(true);
    expect(config.routes[2]?.allowEncodedDelimiters).toBe(true);
    expect(config.admin.mode).toBe('port');
  });
});
