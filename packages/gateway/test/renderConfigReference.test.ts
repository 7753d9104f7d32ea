import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { renderConfigReference } from '../scripts/renderConfigReference.js';
import { gatewayConfigSchema } from '../src/config/gatewayConfig.js';
import { edgeGlobalSchema, edgeRouteSchema } from '../src/stages/createStages.js';

describe('renderConfigReference', () => {
  it('renders one row per field with type, default, required and description', () => {
    const schema = z.object({
      port: z.number().int().min(1).default(80).describe('The port.'),
      mode: z.enum(['a', 'b']).describe('A mode | with a pipe.'),
      items: z.array(z.object({ name: z.string().describe('Item name.') })),
      byName: z.record(z.string(), z.object({ on: z.boolean().default(true) })),
    });
    const md = renderConfigReference(schema, { title: 'T', intro: 'Intro.' });
    expect(md.startsWith('# T\n')).toBe(true);
    expect(md).toContain('| `port` | integer (≥ 1) | `80` | The port. |');
    expect(md).toContain('| `mode` (required) | "a" \\| "b" |  | A mode \\| with a pipe. |');
    expect(md).toContain('| `items[].name` (required) | string |  | Item name. |');
    expect(md).toContain('| `byName.<name>.on` | boolean | `true` |  |');
    expect(renderConfigReference(schema, { title: 'T', intro: 'Intro.' })).toBe(md);
  });

  it('every edge field carries a description', () => {
    const md = renderConfigReference(
      edgeGlobalSchema.extend({ route: edgeRouteSchema.describe('A route.') }),
      {
        title: 'Edge',
        intro: '',
      },
    );
    const rows = md.split('\n').filter((l) => l.startsWith('| `'));
    expect(rows.length).toBeGreaterThan(40);
    const undocumented = rows.filter((l) => l.trimEnd().endsWith('|  |'));
    expect(undocumented).toEqual([]);
  });

  it('every field of the whole gateway config (proxy core and edge) carries a description', () => {
    const md = renderConfigReference(gatewayConfigSchema, { title: 'Gateway', intro: '' });
    const rows = md.split('\n').filter((l) => l.startsWith('| `'));
    expect(rows.length).toBeGreaterThan(90);
    const undocumented = rows.filter((l) => l.trimEnd().endsWith('|  |'));
    expect(undocumented).toEqual([]);
  });
});
