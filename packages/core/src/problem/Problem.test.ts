import { once } from 'node:events';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { ConfigError, ShutdownError } from '../errors.js';
import { parseProblem, problem, problemOf, writeProblem } from './Problem.js';

async function serve(handler: Parameters<typeof createServer>[1], method = 'GET') {
  const server = createServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;
  const res = await new Promise<{ status: number; headers: Record<string, unknown>; body: string }>(
    (resolve, reject) => {
      const req = request({ port, method, host: '127.0.0.1' }, (r) => {
        let body = '';
        r.setEncoding('utf8');
        r.on('data', (c) => (body += c));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, headers: r.headers, body }));
      });
      req.on('error', reject);
      req.end();
    },
  );
  server.close();
  return res;
}

describe('problem+json', () => {
  it('writes RFC 9457 bodies with the Trellis code and request id', async () => {
    const res = await serve((_req, res) =>
      writeProblem(res, problemOf(new ShutdownError('draining'), { requestId: 'r-1' }), {
        'retry-after': '1',
      }),
    );
    expect(res.status).toBe(503);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(res.headers['retry-after']).toBe('1');
    expect(JSON.parse(res.body)).toEqual({
      type: 'urn:trellis:error:TRELLIS_SHUTTING_DOWN',
      title: 'Service Unavailable',
      status: 503,
      code: 'TRELLIS_SHUTTING_DOWN',
      detail: 'draining',
      requestId: 'r-1',
    });
    const head = await serve(
      (_req, res) => writeProblem(res, problem({ status: 404, code: 'TRELLIS_X' })),
      'HEAD',
    );
    expect(head.status).toBe(404);
    expect(head.body).toBe('');
  });

  it('never leaks a non-Trellis error', () => {
    const p = problemOf(new Error('/home/me/secret.ts:12 password=hunter2'));
    expect(p).toMatchObject({ status: 500, code: 'TRELLIS_INTERNAL', detail: 'internal error' });
    expect(JSON.stringify(p)).not.toContain('hunter2');
    expect(problemOf(Object.create(null)).code).toBe('TRELLIS_INTERNAL');
  });

  it('lists validation issues as errors', () => {
    const p = problemOf(
      new ConfigError('bad', { component: 'x', issues: [{ path: 'a.b', message: 'Required' }] }),
      { status: 400 },
    );
    expect(p.errors).toEqual([{ path: 'a.b', message: 'Required' }]);
  });

  it('parses problem bodies back and refuses what is not one', () => {
    const p = problem({ status: 409, code: 'TRELLIS_IN_PROGRESS', detail: 'x' });
    expect(parseProblem('application/problem+json; charset=utf-8', JSON.stringify(p))).toEqual(p);
    expect(parseProblem('application/problem+json', '{nope')).toBeUndefined();
    expect(parseProblem('text/html', JSON.stringify(p))).toBeUndefined();
    expect(parseProblem('application/json', { status: 1 })).toBeUndefined();
    expect(parseProblem('application/problem+json', [1])).toBeUndefined();
    expect(parseProblem(undefined, p)).toBeUndefined();
  });
});
