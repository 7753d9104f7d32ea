import { describe, expect, expectTypeOf, it, onTestFinished } from 'vitest';
import type { z } from 'zod';
import { createHealth } from '../health/createHealth.js';
import { type AdapterOptions, adapterOptionsSchema } from './adapterOptions.js';

describe('AdapterOptions', () => {
  it('lists the same options, with the same types, as the schema that validates them', () => {
    // The interface carries the docs users see; the schema does the checking. `tsc` (npm run
    // typecheck) fails here when one of them gains, loses or retypes an option.
    expectTypeOf<keyof AdapterOptions>().toEqualTypeOf<
      keyof z.infer<typeof adapterOptionsSchema>
    >();
    expectTypeOf<Required<z.infer<typeof adapterOptionsSchema>>>().toEqualTypeOf<
      Required<AdapterOptions>
    >();
  });

  it('rejects an option neither of them lists, by name', () => {
    const health = createHealth({ signals: false });
    onTestFinished(() => health.close());
    expect(adapterOptionsSchema.safeParse({ health, basePath: '/_internal' }).success).toBe(true);
    const bad = adapterOptionsSchema.safeParse({ requestContxt: false });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues)).toContain('requestContxt');
  });
});
