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
});
