import { describe, expect, it, vi } from 'vitest';
import { Emitter } from './Event.js';

describe('Emitter', () => {
  it('delivers to listeners until they unsubscribe', () => {
    const e = new Emitter<number>();
    const seen: number[] = [];
    const off = e.event((v) => seen.push(v));
    e.emit(1);
    off();
    off(); // idempotent
    e.emit(2);
    expect(seen).toEqual([1]);
    expect(e.listenerCount).toBe(0);
  });

  it('isolates a throwing listener and rethrows its error in a microtask', async () => {
    const e = new Emitter<string>();
    const good = vi.fn();
    e.event(() => {
      throw new Error('listener bug');
    });
    e.event(good);
    const errors: unknown[] = [];
    const handler = (err: unknown) => errors.push(err);
    process.prependListener('uncaughtException', handler);
    const origQueue = globalThis.queueMicrotask;
    // Catch the rethrow instead of letting it reach vitest's unhandled-error reporting.
    globalThis.queueMicrotask = (cb) =>
      origQueue(() => {
        try {
          cb();
        } catch (err) {
          errors.push(err);
        }
      });
    try {
      e.emit('x');
      await new Promise((r) => setImmediate(r));
    } finally {
      globalThis.queueMicrotask = origQueue;
      process.removeListener('uncaughtException', handler);
    }
    expect(good).toHaveBeenCalledWith('x');
    expect(errors).toHaveLength(1);
    expect((errors[0] as Error).message).toBe('listener bug');
  });

  it('a listener unsubscribing during emit does not skip others', () => {
    const e = new Emitter<void>();
    const calls: string[] = [];
    const offA = e.event(() => {
      calls.push('a');
      offA();
    });
    e.event(() => calls.push('b'));
    e.emit();
    e.emit();
    expect(calls).toEqual(['a', 'b', 'b']);
  });
});
