/**
 * Routes cannot be walked around (issue 16 class 3): matching is on what the upstream will
 * see. `;` path parameters and encoded delimiters never reach an upstream through a less
 * protected route than the path they name (Tomcat, Jetty and Spring read `/admin;x/users` as
 * `/admin/users`); a method mismatch is 405 with `Allow`, never a fall-through; HEAD is judged
 * by the same auth as GET.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../src/index.js';
import { rawRequest, startGateway, startUpstream, statusOf, type Upstream } from './helpers.js';

let admin: Upstream;
let pub: Upstream;
let files: Upstream;
let g: Awaited<ReturnType<typeof startGateway>>;

beforeAll(async () => {
  admin = await startUpstream();
  pub = await startUpstream();
  files = await startUpstream();
  g = await startGateway({
    auth: { apiKeys: { keys: { ops: { sha256: hashApiKey('ops-secret-key-1') } } } },
    routes: [
      { name: 'public', path: '/', upstream: pub.url },
      {
        name: 'admin',
        path: '/admin',
        methods: ['GET'],
        auth: { apiKey: true },
        upstream: admin.url,
      },
      { name: 'files', path: '/files/:name', allowEncodedDelimiters: true, upstream: files.url },
    ],
  });
});

afterAll(async () => {
  await g.gateway.close();
  await Promise.all([admin.close(), pub.close(), files.close()]);
});

const send = (target: string, method = 'GET', extra = '') =>
  rawRequest(
    g.port,
    `${method} ${target} HTTP/1.1\r\nHost: gw\r\n${extra}Connection: close\r\n\r\n`,
  );

describe('route walking', () => {
  it.each([
    '/admin;x/users',
    '/admin;/users',
    '/admin%3Bx/users',
    '/admin%3bx/users',
    '/admin%2Fusers',
    '/admin%2fusers',
    '/x%5Cadmin',
    '/admin%2Eusers',
    '/public;jsessionid=1/a',
  ])('%s is 400 and reaches no upstream', async (target) => {
    const before = pub.seen.length + admin.seen.length;
    const raw = await send(target);
    expect(statusOf(raw)).toBe(400);
    expect(raw).toContain('"code":"TRELLIS_GATEWAY_BAD_PATH"');
    expect(pub.seen.length + admin.seen.length).toBe(before);
  });

  it('a route that opts in gets delimiters forwarded as the client encoded them', async () => {
    const raw = await send('/files/a%2Fb;v=1');
    expect(statusOf(raw)).toBe(200);
    expect(files.seen.at(-1)?.url).toBe('/files/a%2Fb;v=1');
  });

  it('HEAD is judged by the same auth as GET; other methods get 405, never the public route', async () => {
    const before = pub.seen.length;
    expect(statusOf(await send('/admin/users', 'HEAD'))).toBe(401);
    expect(statusOf(await send('/admin/users', 'HEAD', 'X-Api-Key: ops-secret-key-1\r\n'))).toBe(
      200,
    );
    expect(admin.seen.at(-1)?.method).toBe('HEAD');
    for (const method of ['OPTIONS', 'POST', 'DELETE', 'PATCH']) {
      const raw = await send('/admin/users', method, 'Content-Length: 0\r\n');
      expect(statusOf(raw)).toBe(405);
      expect(raw).toMatch(/^allow: GET, HEAD$/im);
    }
    expect(pub.seen.length).toBe(before);
  });
});
