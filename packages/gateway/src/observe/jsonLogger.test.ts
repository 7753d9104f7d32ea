import { ConfigError } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { createJsonLogger } from './jsonLogger.js';

describe('createJsonLogger', () => {
  it('writes pino-shaped JSON lines, filters by level, serialises errors, binds children', () => {
    const out: string[] = [];
    const logger = createJsonLogger((l) => out.push(l), 'info', { name: 'gw' });
    logger.debug('hidden');
    logger.info({ a: 1 }, 'hello');
    logger
      .child?.({ route: 'r' })
      .error(
        { err: new ConfigError('bad', { component: 'x', issues: [{ path: 'p', message: 'm' }] }) },
        'failed',
      );
    expect(out).toHaveLength(2);
    expect(out.every((l) => l.endsWith('\n'))).toBe(true);
    const [a, b] = out.map((l) => JSON.parse(l));
    expect(a).toMatchObject({ level: 30, name: 'gw', a: 1, msg: 'hello' });
    expect(typeof a.time).toBe('number');
    expect(b).toMatchObject({
      level: 50,
      route: 'r',
      msg: 'failed',
      err: {
        type: 'ConfigError',
        code: 'TRELLIS_CONFIG_INVALID',
        issues: [{ path: 'p', message: 'm' }],
      },
    });
  });
});
