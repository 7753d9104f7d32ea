import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { parseOptions } from '../options.js';
import { noopPolicy } from '../Policy.js';
import { createTestClock } from '../testing/index.js';
import { clockField, fnField, loggerField, policyField, resolverField } from './fields.js';

const schema = z.strictObject({
  logger: loggerField().optional(),
  clock: clockField().optional(),
  resolver: resolverField().optional(),
  policy: policyField().optional(),
  onEvent: fnField().optional(),
});

describe('option fields', () => {
  it('accept what they describe', () => {
    const logger = { debug() {}, info() {}, warn() {}, error() {} };
    const o = parseOptions(schema, { logger, clock: createTestClock(), policy: noopPolicy }, 'x');
    expect(o.logger).toBe(logger);
  });

  it('refuse anything else with a ConfigError naming the field', () => {
    for (const [field, value, message] of [
      ['logger', { warn() {} }, /logger: must be a pino-compatible logger/],
      ['clock', { now: () => 0 }, /clock: must be a Clock/],
      ['resolver', 'http://x', /resolver: must be a Resolver/],
      ['policy', Object.create(null), /policy: must be a Policy/],
      ['onEvent', 1, /onEvent: must be a function/],
    ] as const) {
      expect(() => parseOptions(schema, { [field]: value }, 'x')).toThrow(message);
    }
  });
});
