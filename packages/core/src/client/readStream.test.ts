import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NdjsonParser, type RawSseEvent, SseParser } from './readStream.js';

describe('SseParser', () => {
  it('follows the event-stream rules: fields, comments, CR/LF/CRLF, multi-line data, ids', () => {
    const events: RawSseEvent[] = [];
    const p = new SseParser((e) => events.push(e));
    p.push(': keep-alive\r\nid: 1\r\nevent: price\r\ndata: {"a":\r\ndata: 1}\r\n\r\n');
    p.push('data:2\rid\r\r');
    p.push('retry: 250\nid: bad\0id\ndata: 3\n\n');
    expect(events).toEqual([
      { data: '{"a":\n1}', id: '1', event: 'price' },
      { data: '2', id: '', event: undefined },
      { data: '3', id: '', event: undefined },
    ]);
    expect(p.retryMs).toBe(250);
  });

  it('gives the same events however the text is split into chunks (property)', () => {
    const text = 'id: 7\ndata: {"n":1}\n\n: c\r\ndata: x\r\ndata: y\r\n\r\nevent: e\rdata: z\r\r';
    const whole: RawSseEvent[] = [];
    new SseParser((e) => whole.push(e)).push(text);
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: text.length }), { maxLength: 8 }), (cuts) => {
        const got: RawSseEvent[] = [];
        const p = new SseParser((e) => got.push(e));
        const points = [0, ...[...cuts].sort((a, b) => a - b), text.length];
        for (let i = 1; i < points.length; i++) p.push(text.slice(points[i - 1], points[i]));
        expect(got).toEqual(whole);
      }),
      { seed: 19, numRuns: 200 },
    );
    expect(whole).toHaveLength(3);
  });
});

describe('NdjsonParser', () => {
  it('splits lines, drops blank ones and a trailing CR, keeps the unterminated last line for end()', () => {
    const lines: string[] = [];
    const p = new NdjsonParser((l) => lines.push(l));
    p.push('{"a":1}\r\n\n{"b"');
    p.push(':2}\n  \n{"c":3}');
    expect(lines).toEqual(['{"a":1}', '{"b":2}']);
    expect(p.buffered).toBe(7);
    p.end();
    expect(lines).toEqual(['{"a":1}', '{"b":2}', '{"c":3}']);
  });
});
