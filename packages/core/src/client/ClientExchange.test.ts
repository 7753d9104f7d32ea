import type { Dispatcher } from 'undici';
import { describe, expect, it } from 'vitest';
import { ClientExchange } from './ClientExchange.js';

/** Stands in for undici's controller: records aborts (the ClientExchange's own contract with it). */
function controller() {
  const aborted: Error[] = [];
  const c: Dispatcher.DispatchController = {
    get aborted() {
      return aborted.length > 0;
    },
    get paused() {
      return false;
    },
    get reason() {
      return aborted[0] ?? null;
    },
    abort: (reason: Error) => {
      aborted.push(reason);
    },
    pause: () => {},
    resume: () => {},
  };
  return { c, aborted };
}

describe('ClientExchange', () => {
  it('collects status, headers and body chunks, and resolves once', async () => {
    const { c } = controller();
    let t = 5;
    const ex = new ClientExchange(() => t++, 1_000);
    ex.onRequestStart(c);
    ex.onResponseStart(c, 100, {});
    ex.onResponseStart(c, 200, { 'content-type': 'application/json' });
    ex.onResponseData(c, Buffer.from('{"a"'));
    ex.onResponseData(c, Buffer.from(':1'));
    ex.onResponseData(c, Buffer.from('}'));
    ex.onResponseEnd();
    ex.onResponseError(c, new Error('late'));
    await expect(ex.promise).resolves.toBe(ex);
    expect(ex.statusCode).toBe(200);
    expect(ex.headers['content-type']).toBe('application/json');
    expect(ex.headersAt).toBe(5);
    expect(ex.body()?.toString()).toBe('{"a":1}');
  });

  it('returns the single chunk without copying, and undefined for no body', async () => {
    const { c } = controller();
    const one = Buffer.from('x');
    const ex = new ClientExchange(undefined, 10);
    ex.onResponseStart(c, 204, {});
    ex.onResponseEnd();
    expect(ex.body()).toBeUndefined();
    expect(ex.headersAt).toBe(0);
    const ex2 = new ClientExchange(undefined, 10);
    ex2.onResponseData(c, one);
    expect(ex2.body()).toBe(one);
  });

  it('defers an abort that comes before the request starts', async () => {
    const ex = new ClientExchange(undefined, 10);
    const reason = new Error('timeout');
    ex.abort(reason);
    await expect(ex.promise).rejects.toBe(reason);
    const { c, aborted } = controller();
    ex.onRequestStart(c);
    expect(aborted).toEqual([reason]);
  });

  it('aborts on the wire and ignores later callbacks', async () => {
    const { c, aborted } = controller();
    const ex = new ClientExchange(undefined, 10);
    ex.onRequestStart(c);
    const reason = new Error('caller');
    ex.abort(reason);
    ex.abort(new Error('second'));
    ex.onResponseEnd();
    await expect(ex.promise).rejects.toBe(reason);
    expect(aborted).toEqual([reason]);
  });

  it('acts as an abort-signal listener through handleEvent', async () => {
    const ex = new ClientExchange(undefined, 10);
    const ac = new AbortController();
    ex.signal = ac.signal;
    ex.onSignal = (e) => e.abort(new Error(String(e.signal?.reason)));
    ac.signal.addEventListener('abort', ex);
    ac.abort('stop');
    await expect(ex.promise).rejects.toThrow('stop');
  });

  it('stops buffering past maxBytes and flags tooLarge', async () => {
    const { c, aborted } = controller();
    const ex = new ClientExchange(undefined, 4);
    ex.onRequestStart(c);
    ex.onResponseData(c, Buffer.from('abc'));
    ex.onResponseData(c, Buffer.from('de'));
    expect(ex.tooLarge).toBe(true);
    expect(aborted).toHaveLength(1);
    await expect(ex.promise).rejects.toThrow('too large');
  });
});
