import { createStatusRegistry, type Logger, silentLogger } from '@trellis/core';
import { describe, expect, it } from 'vitest';
import { StatusScope, statusName } from './StatusScope.js';

describe('statusName', () => {
  it('keeps valid names and rewrites route indexes and other characters', () => {
    expect(statusName('orders')).toBe('orders');
    expect(statusName('routes[3]')).toBe('routes.3');
    expect(statusName('a b?c')).toBe('a_b_c');
    expect(statusName('')).toBe('_');
    expect(statusName('x'.repeat(300))).toHaveLength(200);
  });
});

describe('StatusScope', () => {
  it('forwards only while active; a new scope takes the same names after the old one leaves', () => {
    const status = createStatusRegistry();
    const old = new StatusScope(status, silentLogger);
    old.register('r', { kind: 'route', snapshot: () => ({ v: 1 }) });
    expect(status.names()).toEqual([]);
    old.activate();
    expect(status.names()).toEqual(['r']);
    const next = new StatusScope(status, silentLogger);
    next.register('r', { kind: 'route', snapshot: () => ({ v: 2 }) });
    old.deactivate();
    next.activate();
    expect(status.snapshot().components).toEqual([{ name: 'r', kind: 'route', v: 2 }]);
    // Registered after activation (a breaker made on a request path): forwarded at once.
    const off = next.register('r/i:1', { kind: 'breaker', snapshot: () => ({ state: 'open' }) });
    expect(status.names()).toContain('r/i:1');
    off();
    expect(status.names()).not.toContain('r/i:1');
  });

  it('logs a clashing registration instead of throwing it into a request', () => {
    const status = createStatusRegistry();
    status.register('taken', { kind: 'route', snapshot: () => ({}) });
    const warned: unknown[] = [];
    const logger = { ...silentLogger, warn: (o: unknown) => warned.push(o) } as Logger;
    const scope = new StatusScope(status, logger);
    scope.activate();
    expect(() => scope.register('taken', { kind: 'route', snapshot: () => ({}) })).not.toThrow();
    expect(warned).toHaveLength(1);
  });

  it('shows a balancer as an upstream whose instances carry their breaker state', () => {
    const status = createStatusRegistry();
    const scope = new StatusScope(status, silentLogger);
    scope.register('api', {
      kind: 'service',
      snapshot: () => ({ instances: [{ id: 'h:1' }, { id: 'h:2' }] }),
      eject: (id) => id === 'h:1',
    });
    scope.register('api/h:1', { kind: 'breaker', snapshot: () => ({ state: 'open' }) });
    scope.activate();
    const up = status.get('api', 'upstream');
    expect(up?.snapshot()).toEqual({ instances: [{ id: 'h:1', breaker: 'open' }, { id: 'h:2' }] });
    expect(up?.eject?.('h:1')).toBe(true);
  });
});
