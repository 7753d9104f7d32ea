/**
 * The status registry and admin API on the admin listener (issue 21), through `createGateway` on
 * real sockets: `/admin/status` lists routes and upstream instances with their breakers, eject
 * stops traffic to an instance, isolating an instance's breaker answers 503 without touching the
 * upstream, reload re-registers under the same names, and the API is not on the gateway port.
 */
import { ConfigError, createStatusRegistry } from '@trellis/core';
import { afterEach, describe, expect, it } from 'vitest';
import { createGateway } from '../src/index.js';
import { startGateway, startUpstream } from './helpers.js';

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  while (cleanup.length > 0) await cleanup.pop()?.();
});

interface Component {
  name: string;
  kind: string;
  [k: string]: unknown;
}

async function twoInstances() {
  const a = await startUpstream((_q, res) => res.end('a'));
  const b = await startUpstream((_q, res) => res.end('b'));
  cleanup.push(
    () => a.close(),
    () => b.close(),
  );
  return { a, b };
}

async function components(adminUrl: string, init?: RequestInit): Promise<Component[]> {
  const res = await fetch(`${adminUrl}/admin/status`, init);
  expect(res.status).toBe(200);
  return ((await res.json()) as { components: Component[] }).components;
}

describe('admin API on the admin listener', () => {
  it('lists routes and upstream instances with their breaker state', async () => {
    const { a, b } = await twoInstances();
    const g = await startGateway({
      routes: [{ name: 'api', path: '/api', upstream: [a.url, b.url], retry: false }],
    });
    cleanup.push(() => g.gateway.close());
    for (let i = 0; i < 4; i++) expect((await fetch(`${g.url}/api/x`)).status).toBe(200);
    const list = await components(g.adminUrl);
    const route = list.find((c) => c.kind === 'route' && c.name === 'api');
    expect(route).toMatchObject({ path: '/api', upstream: 'api' });
    const upstream = list.find((c) => c.kind === 'upstream' && c.name === 'api');
    const ids = [`127.0.0.1:${a.port}`, `127.0.0.1:${b.port}`];
    const instances = upstream?.instances as { id: string; breaker: string; ejected: boolean }[];
    expect(instances.map((i) => i.id).sort()).toEqual(ids.sort());
    for (const i of instances) expect(i).toMatchObject({ breaker: 'closed', ejected: false });
    const breakers = list.filter((c) => c.kind === 'breaker').map((c) => c.name);
    expect(breakers.sort()).toEqual(ids.map((id) => `api/${id}`).sort());
    expect(list.some((c) => c.kind === 'budget' && c.name === 'api')).toBe(false); // retry: false
  });

  it('POST eject makes the gateway stop sending to that instance; restore brings it back', async () => {
    const { a, b } = await twoInstances();
    const g = await startGateway({
      routes: [
        { name: 'api', path: '/', upstream: { urls: [a.url, b.url], balancer: 'roundRobin' } },
      ],
    });
    cleanup.push(() => g.gateway.close());
    for (let i = 0; i < 4; i++) await (await fetch(`${g.url}/warm`)).text();
    const id = `127.0.0.1:${a.port}`;
    const ej = await fetch(`${g.adminUrl}/admin/services/api/instances/${id}/eject`, {
      method: 'POST',
    });
    expect(ej.status).toBe(200);
    const before = a.seen.length;
    const bodies = [];
    for (let i = 0; i < 6; i++) bodies.push(await (await fetch(`${g.url}/x`)).text());
    expect(bodies).toEqual(['b', 'b', 'b', 'b', 'b', 'b']);
    expect(a.seen.length).toBe(before);
    const list = await components(g.adminUrl);
    const up = list.find((c) => c.kind === 'upstream' && c.name === 'api');
    const inst = (
      up?.instances as { id: string; ejected: boolean; ejectionReason?: string }[] | undefined
    )?.find((i) => i.id === id);
    expect(inst).toMatchObject({ ejected: true, ejectionReason: 'manual' });
    const back = await fetch(`${g.adminUrl}/admin/services/api/instances/${id}/restore`, {
      method: 'POST',
    });
    expect(back.status).toBe(200);
    const after = [];
    for (let i = 0; i < 4; i++) after.push(await (await fetch(`${g.url}/y`)).text());
    expect(after).toContain('a');
    const unknown = await fetch(`${g.adminUrl}/admin/services/api/instances/nope:1/eject`, {
      method: 'POST',
    });
    expect(unknown.status).toBe(404);
  });

  it("isolating an instance's breaker answers 503 without touching the upstream", async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const g = await startGateway({ routes: [{ name: 'one', path: '/', upstream: up.url }] });
    cleanup.push(() => g.gateway.close());
    const name = encodeURIComponent(`one/127.0.0.1:${up.port}`);
    const iso = await fetch(`${g.adminUrl}/admin/breakers/${name}/isolate`, { method: 'POST' });
    expect(iso.status).toBe(200);
    const res = await fetch(`${g.url}/x`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { code: string }).code).toBe('TRELLIS_CIRCUIT_OPEN');
    expect(up.seen).toHaveLength(0);
    const reset = await fetch(`${g.adminUrl}/admin/breakers/${name}/reset`, { method: 'POST' });
    expect(reset.status).toBe(200);
    expect((await fetch(`${g.url}/x`)).status).toBe(200);
    expect(up.seen).toHaveLength(1);
  });

  it('is not reachable on the gateway port, even with a route on /', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const g = await startGateway({
      routes: [{ path: '/', upstream: up.url }],
      admin: { mode: 'gateway' },
    });
    cleanup.push(() => g.gateway.close());
    const res = await fetch(`${g.url}/admin/status`);
    expect(res.status).toBe(200);
    // Proxied to the upstream like any path: the gateway did not answer it.
    expect(((await res.json()) as { url: string }).url).toBe('/admin/status');
    const noRoute = await startGateway({ routes: [{ path: '/api', upstream: up.url }] });
    cleanup.push(() => noRoute.gateway.close());
    expect((await fetch(`${noRoute.url}/admin/status`)).status).toBe(404);
    expect((await fetch(`${noRoute.adminUrl}/admin/status`)).status).toBe(200);
  });

  it('asks for the configured token; reload keeps names registered once', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const token = 'an-admin-token-0123456789';
    const config = { routes: [{ name: 'r', path: '/', upstream: up.url }], admin: { token } };
    const g = await startGateway(config);
    cleanup.push(() => g.gateway.close());
    expect((await fetch(`${g.adminUrl}/admin/status`)).status).toBe(401);
    const auth = { headers: { authorization: `Bearer ${token}` } };
    expect((await components(g.adminUrl, auth)).some((c) => c.name === 'r')).toBe(true);
    g.gateway.reload({ ...config, routes: [{ ...config.routes[0], path: '/v2' }] });
    const list = await components(g.adminUrl, auth);
    const routes = list.filter((c) => c.kind === 'route');
    expect(routes).toHaveLength(1);
    expect(routes[0]).toMatchObject({ name: 'r', path: '/v2' });
    expect(list.filter((c) => c.kind === 'upstream' && c.name === 'r')).toHaveLength(1);
  });

  it('ends /admin/events streams when the gateway closes', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const g = await startGateway({ routes: [{ name: 'r', path: '/', upstream: up.url }] });
    const res = await fetch(`${g.adminUrl}/admin/events`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    await reader.read(); // the first snapshot
    await g.gateway.close();
    let done = false;
    while (!done) done = (await reader.read()).done;
    expect(done).toBe(true);
    expect(g.gateway.status.closed).toBe(true);
  });

  it('refuses a short token and a status option that is not a registry, naming the field', () => {
    const routes = [{ path: '/', upstream: 'http://127.0.0.1:1' }];
    expect(() => createGateway({ routes, admin: { token: 'short' } })).toThrow(ConfigError);
    expect(() => createGateway({ routes, admin: { token: 'short' } })).toThrow(/admin\.token/);
    expect(() => createGateway({ routes, admin: { token: {} } })).toThrow(/admin\.token/);
    expect(() => createGateway({ routes }, { status: {} as never })).toThrow(/status/);
  });

  it('registers with an injected registry and leaves it open on close', async () => {
    const up = await startUpstream();
    cleanup.push(() => up.close());
    const status = createStatusRegistry({ service: 'edge' });
    const g = await startGateway(
      { routes: [{ name: 'r', path: '/', upstream: up.url }] },
      { status },
    );
    expect(g.gateway.status).toBe(status);
    expect(status.names()).toContain('r');
    await g.gateway.close();
    expect(status.closed).toBe(false);
    expect(status.names()).toEqual([]);
  });
});
