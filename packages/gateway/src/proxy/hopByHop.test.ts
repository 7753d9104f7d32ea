import { describe, expect, it } from 'vitest';
import { connectionTokens, stripHopByHop } from './hopByHop.js';

describe('stripHopByHop', () => {
  it('removes hop-by-hop and Connection-named headers, keeps te: trailers', () => {
    const h: Record<string, string | undefined> = {
      connection: 'close, X-Secret',
      'x-secret': '1',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      te: 'trailers',
      'proxy-authorization': 'Basic x',
      accept: '*/*',
    };
    stripHopByHop(h);
    expect(h).toEqual({ te: 'trailers', accept: '*/*' });
  });

  it('drops te unless it is exactly trailers, and honours the original Connection list', () => {
    const h: Record<string, string | undefined> = { te: 'gzip', 'x-a': '1', 'x-b': '2' };
    stripHopByHop(h, connectionTokens('x-a'));
    expect(h).toEqual({ 'x-b': '2' });
  });

  it('connectionTokens ignores close and keep-alive', () => {
    expect(connectionTokens('close')).toBeUndefined();
    expect(connectionTokens(['keep-alive, X-Y', 'z'])).toEqual(new Set(['x-y', 'z']));
  });
});
