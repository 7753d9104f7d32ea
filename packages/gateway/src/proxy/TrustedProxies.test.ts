import { describe, expect, it } from 'vitest';
import { forwardedNode, TrustedProxies } from './TrustedProxies.js';

describe('TrustedProxies', () => {
  it('without a setting nobody is trusted', () => {
    const t = new TrustedProxies(undefined);
    expect(t.enabled).toBe(false);
    expect(t.clientIp('10.0.0.1', '6.6.6.6')).toBe('10.0.0.1');
  });

  it('CIDRs: walks X-Forwarded-For right to left, skipping trusted hops', () => {
    const t = new TrustedProxies({ cidrs: ['10.0.0.0/8', 'loopback'] });
    expect(t.clientIp('10.0.0.1', '6.6.6.6, 1.2.3.4, 10.0.0.9')).toBe('1.2.3.4');
    expect(t.clientIp('9.9.9.9', '6.6.6.6')).toBe('9.9.9.9');
    expect(t.clientIp('::ffff:127.0.0.1', '10.1.1.1, 10.2.2.2')).toBe('10.1.1.1');
    expect(t.clientIp('10.0.0.1', 'garbage, 1.2.3.4')).toBe('1.2.3.4');
    expect(t.clientIp('10.0.0.1', '1.2.3.4, garbage')).toBe('10.0.0.1');
  });

  it('hops: the n-th address from the right', () => {
    const t = new TrustedProxies({ hops: 2 });
    expect(t.clientIp('10.0.0.1', '6.6.6.6, 1.2.3.4, 5.5.5.5')).toBe('1.2.3.4');
    expect(t.clientIp('10.0.0.1', '5.5.5.5')).toBe('5.5.5.5');
  });

  it('formats Forwarded nodes', () => {
    expect(forwardedNode('1.2.3.4')).toBe('1.2.3.4');
    expect(forwardedNode('::1')).toBe('"[::1]"');
  });
});
