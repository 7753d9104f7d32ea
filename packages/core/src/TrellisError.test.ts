import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { z } from 'zod';
import { ConfigError, HttpError, TimeoutError } from './errors.js';
import { parseOptions } from './options.js';
import { defineError, isTrellisError, TrellisError } from './TrellisError.js';

describe('TrellisError', () => {
  it('carries code, name, message, cause and retryable', () => {
    const cause = new Error('socket');
    const err = new TimeoutError('took too long', { timeoutMs: 50, cause });
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(TrellisError);
    expect(err).toBeInstanceOf(TimeoutError);
    expect(err.code).toBe('TRELLIS_TIMEOUT');
    expect(err.name).toBe('TimeoutError');
    expect(err.message).toBe('took too long');
    expect(err.cause).toBe(cause);
    expect(err.timeoutMs).toBe(50);
    expect(err.retryable).toBe(true);
    expect(new TimeoutError('x', { timeoutMs: 1, retryable: false }).retryable).toBe(false);
    expectTypeOf(err.timeoutMs).toEqualTypeOf<number>();
  });

  it('instanceof narrows an unknown to the class with its properties', () => {
    const caught: unknown = new TimeoutError('t', { timeoutMs: 7 });
    if (!(caught instanceof TimeoutError)) throw new Error('expected a TimeoutError');
    expectTypeOf(caught.timeoutMs).toEqualTypeOf<number>();
    expect(caught.timeoutMs).toBe(7);
  });

  it('distinguishes classes by brand', () => {
    const err = new TimeoutError('t', { timeoutMs: 1 });
    expect(err instanceof HttpError).toBe(false);
    expect(err instanceof ConfigError).toBe(false);
    expect({} instanceof TrellisError).toBe(false);
    expect((null as unknown) instanceof TimeoutError).toBe(false);
    expect(isTrellisError(err)).toBe(true);
    expect(isTrellisError(new Error('plain'))).toBe(false);
  });

  it('instanceof holds for an error created by a second copy of the module', async () => {
    // Load a physically separate copy of the module (as when two versions of a package are
    // installed side by side) and check errors cross the boundary both ways.
    const dir = mkdtempSync(join(tmpdir(), 'trellis-copy-'));
    const source = readFileSync(new URL('./TrellisError.ts', import.meta.url), 'utf8');
    writeFileSync(join(dir, 'TrellisError.ts'), source);
    const copy = (await import(join(dir, 'TrellisError.ts'))) as typeof import('./TrellisError.js');
    expect(copy.TrellisError).not.toBe(TrellisError);
    const CopyTimeout = copy.defineError<{ timeoutMs: number }>({
      code: 'TRELLIS_TIMEOUT',
      name: 'TimeoutError',
      description: 'copy',
    });
    const foreign = new CopyTimeout('from the copy', { timeoutMs: 5 });
    expect(foreign instanceof TrellisError).toBe(true);
    expect(foreign instanceof TimeoutError).toBe(true);
    expect(foreign instanceof HttpError).toBe(false);
    const local = new TimeoutError('local', { timeoutMs: 1 });
    expect(local instanceof copy.TrellisError).toBe(true);
    expect(local instanceof CopyTimeout).toBe(true);
  });

  it('rejects malformed codes', () => {
    expect(() =>
      defineError({ code: 'TRELLIS_bad' as 'TRELLIS_X', name: 'X', description: '' }),
    ).toThrow(/must match/);
  });
});

describe('ConfigError via parseOptions', () => {
  const schema = z.object({
    maxAttempts: z.number().int().min(1),
    nested: z.object({ threshold: z.number().min(0).max(1) }).optional(),
    routes: z.array(z.object({ path: z.string().startsWith('/') })).optional(),
  });

  it('names the offending field paths', () => {
    let caught: unknown;
    try {
      parseOptions(
        schema,
        { maxAttempts: 0, nested: { threshold: 2 }, routes: [{ path: 'x' }] },
        'retry',
      );
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const err = caught as ConfigError;
    expect(err.code).toBe('TRELLIS_CONFIG_INVALID');
    expect(err.component).toBe('retry');
    expect(err.issues.map((i) => i.path)).toEqual([
      'maxAttempts',
      'nested.threshold',
      'routes[0].path',
    ]);
    expect(err.message).toMatch(
      /^retry: invalid options: maxAttempts: .*nested\.threshold: .*routes\[0\]\.path: /,
    );
  });

  it('returns the parsed value when valid', () => {
    expect(parseOptions(schema, { maxAttempts: 3 }, 'retry')).toEqual({ maxAttempts: 3 });
  });
});
