import { describe, expect, it } from 'vitest';
import { RouteTable } from './RouteTable.js';

describe('RouteTable', () => {
  const table = new RouteTable([
    { path: '/', name: 'root' },
    { path: '/api', name: 'api' },
    { path: '/api/users', name: 'users' },
    { path: '/orders/:id', name: 'order' },
    { path: '/files/:bucket/*', name: 'files' },
    { path: '/api', name: 'api-post', methods: ['POST'] },
    { path: '/api', name: 'api-host', hosts: ['*.example.com'] },
  ]);
  const m = (path: string, method = 'GET', host = 'gw') => {
    const r = table.match(path, method, host);
    if (r !== undefined && 'allow' in r) return { allow: r.allow };
    return r && { name: r.route.name, params: r.params, rest: r.rest };
  };

  it('prefix routes match on segment boundaries, most specific first', () => {
    expect(m('/api/users/7')).toEqual({ name: 'users', params: {}, rest: '/7' });
    expect(m('/api/x')?.name).toBe('api');
    expect(m('/apix')?.name).toBe('root');
    expect(m('/api')).toEqual({ name: 'api', params: {}, rest: '' });
  });

  it('patterns bind params; without /* they match exactly', () => {
    expect(m('/orders/42')).toEqual({ name: 'order', params: { id: '42' }, rest: '' });
    expect(m('/orders/42/items')?.name).toBe('root');
    expect(m('/files/b1/x/y')).toEqual({ name: 'files', params: { bucket: 'b1' }, rest: '/x/y' });
  });

  it('method and host constraints', () => {
    expect(m('/api/x', 'POST')?.name).toBe('api-post');
    expect(m('/api/x', 'GET', 'a.example.com:8080')?.name).toBe('api-host');
    expect(m('/api/x', 'GET', 'example.com')?.name).toBe('api');
  });

  it('a path match wins over a method mismatch: 405 with Allow, never a fall-through', () => {
    const t = new RouteTable([
      { path: '/', name: 'public' },
      { path: '/admin', name: 'admin', methods: ['GET'] },
      { path: '/admin', name: 'admin-post', methods: ['POST'] },
      { path: '/cors', name: 'cors', methods: ['GET'], preflight: true },
    ]);
    const r = (path: string, method: string, preflight = false) => {
      const x = t.match(path, method, 'gw', preflight);
      return x === undefined ? undefined : 'allow' in x ? [...x.allow].sort() : x.route.name;
    };
    expect(r('/admin/x', 'DELETE')).toEqual(['GET', 'HEAD', 'POST']);
    expect(r('/admin/x', 'OPTIONS')).toEqual(['GET', 'HEAD', 'POST']);
    expect(r('/admin/x', 'HEAD')).toBe('admin');
    expect(r('/admin/x', 'POST')).toBe('admin-post');
    expect(r('/x', 'TRACE')).toEqual(['DELETE', 'GET', 'HEAD', 'OPTIONS', 'PATCH', 'POST', 'PUT']);
    expect(r('/x', 'CONNECT')).toBeTypeOf('object');
    expect(r('/cors', 'OPTIONS', true)).toBe('cors');
    expect(r('/cors', 'OPTIONS', false)).toEqual(['GET', 'HEAD']);
  });
});
