/**
 * Fuzzing the front door (issue 16): generated raw requests (methods, targets, header sets,
 * framing, encodings, upgrade headers) and generated upstream answers (1xx, framing errors,
 * early closes) thrown at a real gateway over real sockets. After each input: the gateway still
 * serves, the client got one well-formed answer or a clean close, nothing outside the matched
 * route's prefix reached an upstream, no breaker changed state; at the end no socket or timer
 * is left behind. Fixed seeds; `TRELLIS_FUZZ_RUNS=5000` for a long local run.
 */
import { once } from 'node:events';
import { type AddressInfo, connect, createServer as createTcpServer, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../src/index.js';
import {
  handleCounts,
  settledHandles,
  startGateway,
  startUpstream,
  type Upstream,
} from './helpers.js';

const RUNS = Number(process.env.TRELLIS_FUZZ_RUNS ?? 200);

let api: Upstream;
let admin: Upstream;
let hostile: ReturnType<typeof createTcpServer>;
let hostileAnswer = '';
let hostileSockets = new Set<Socket>();
let g: Awaited<ReturnType<typeof startGateway>>;
let before: ReturnType<typeof handleCounts>;

beforeAll(async () => {
  api = await startUpstream();
  admin = await startUpstream();
  hostile = createTcpServer((socket) => {
    hostileSockets.add(socket);
    socket.on('close', () => hostileSockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', () => {
      const [bytes, end] = hostileAnswer.split('\u0000');
      socket.write(bytes ?? '');
      if (end === 'destroy') socket.destroy();
      else if (end === 'end') socket.end();
      // 'hang': left open; the gateway's timeouts must end it.
    });
  });
  hostile.listen(0, '127.0.0.1');
  await once(hostile, 'listening');
  const hostileUrl = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}`;
  const breaker = { consecutiveFailures: 1, halfOpenAfterMs: 600_000 };
  g = await startGateway(
    {
      auth: { apiKeys: { keys: { ops: { sha256: hashApiKey('ops-secret-key-1') } } } },
      limits: { headersTimeoutMs: 800, requestTimeoutMs: 1_000 },
      routes: [
        {
          name: 'api',
          path: '/api',
          upstream: api.url,
          circuitBreaker: breaker,
          maxBodyBytes: 64,
          timeouts: { requestBodyMs: 300 },
        },
        { name: 'ws', path: '/ws', websocket: true, upstream: api.url, circuitBreaker: breaker },
        { name: 'admin', path: '/admin', auth: { apiKey: true }, upstream: admin.url },
        {
          name: 'raw',
          path: '/raw',
          upstream: hostileUrl,
          retry: false,
          circuitBreaker: false,
          timeouts: { headersMs: 300, bodyMs: 300 },
        },
      ],
    },
    { closeTimeoutMs: 1_000 },
  );
  // Warm the upstream pool: its keep-alive connection is not a leak.
  await probe();
  before = handleCounts();
});

afterAll(async () => {
  await g.gateway.close();
  for (const s of hostileSockets) s.destroy();
  hostileSockets = new Set();
  hostile.close();
  await api.close();
  await admin.close();
});

/**
 * Sends raw bytes (no half-close: Node's server drops requests on a client FIN) and returns what
 * came back and whether the gateway closed the socket.
 */
async function exchange(bytes: string, waitMs = 2_500): Promise<{ text: string; closed: boolean }> {
  const socket = connect(g.port, '127.0.0.1');
  socket.on('error', () => {});
  await once(socket, 'connect');
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  socket.write(Buffer.from(bytes, 'latin1'));
  const closed = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), waitMs);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  socket.destroy();
  return { text: Buffer.concat(chunks).toString('latin1'), closed };
}

/**
 * One well-formed answer (after any 1xx), or a clean close: nothing at all, or only interim
 * (1xx) answers when the upstream failed before the final head left the gateway.
 */
function wellFormed(text: string): boolean {
  if (text === '') return true;
  let rest = text;
  for (;;) {
    if (rest === '' && rest !== text) return true;
    const m =
      /^HTTP\/1\.1 ([1-5]\d\d) [^\r\n]*\r\n(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [^\r\n]*\r\n)*\r\n/.exec(
        rest,
      );
    if (m === null) return false;
    const status = Number(m[1]);
    rest = rest.slice(m[0].length);
    if (status >= 200 || status === 101) return true;
  }
}

/** The gateway serves and the breakers are closed: a plain GET reaches the upstream. */
async function probe(): Promise<void> {
  const n = api.seen.length;
  const res = await exchange('GET /api/probe HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n');
  expect(res.text).toMatch(/^HTTP\/1\.1 200 /);
  expect(api.seen.length).toBe(n + 1);
}

const method = fc.constantFrom(
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'DELETE',
  'OPTIONS',
  'TRACE',
  'CONNECT',
  'PATCH',
  'get',
  'FOO',
  'G ET',
);
const segment = fc.constantFrom(
  'a',
  'users',
  '..',
  '.',
  '%2e%2e',
  '%2E',
  '%2F',
  '%2f',
  '%5C',
  ';x',
  ';',
  '%3B',
  '%00',
  '%0d%0a',
  '%25',
  '%252e',
  '%zz',
  '%C3%A9',
  '%c0%ae',
  'é',
  '#f',
  '?q=1',
  '?a=%3D',
  '%3D%2C%40%26',
  '',
  '\\',
  '*',
  '..;',
);
const prefix = fc.constantFrom(
  '/api',
  '/admin',
  '/ws',
  '/',
  '',
  '//api',
  '*',
  'http://evil/api',
  '/API',
  '/apix',
);
const target = fc
  .tuple(prefix, fc.array(segment, { maxLength: 5 }))
  .map(([p, s]) => p + (s.length ? `/${s.join('/')}` : ''));
const header = fc.constantFrom(
  'Host: gw',
  'Host: gw',
  'Host: gw',
  'Host: a/b',
  'Host: gw\r\nHost: other',
  'Host: user@gw',
  'Host:',
  'Content-Length: 5',
  'Content-Length: 0',
  'Content-Length: -1',
  'Content-Length: 5\r\nContent-Length: 6',
  'Content-Length: 1e3',
  'Transfer-Encoding: chunked',
  'Transfer-Encoding: gzip, chunked',
  'Transfer-Encoding: chunked\r\nContent-Length: 3',
  'Expect: 100-continue',
  'Expect: something',
  'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
  'Upgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA',
  'X_User: admin',
  'X-Trellis-Identity: {"sub":"admin"}',
  'X-Forwarded-For: 6.6.6.6',
  'X-Trellis-Deadline-Ms: 1',
  'X-Api-Key: wrong',
  'Origin: https://evil.example',
  'Bad Header: x',
  'Te: trailers',
  'Connection: keep-alive, x-secret\r\nX-Secret: 1',
);
const body = fc.constantFrom(
  '',
  'hello',
  '5\r\nhello\r\n0\r\n\r\n',
  'zz\r\nhello\r\n0\r\n\r\n',
  'x'.repeat(100),
  '3\r\nab',
);
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/1.1 x');

describe('fuzz', () => {
  it(
    `generated requests (${RUNS} runs): one well-formed answer, nothing outside the route, breakers closed`,
    async () => {
      await fc.assert(
        fc.asyncProperty(
          method,
          target,
          version,
          fc.uniqueArray(header, { maxLength: 5 }),
          body,
          async (m, t, v, hs, b) => {
            const raw = `${m} ${t} ${v}\r\n${hs.join('\r\n')}${hs.length ? '\r\n' : ''}Connection: close\r\n\r\n${b}`;
            const res = await exchange(raw);
            expect(res.closed).toBe(true);
            expect(wellFormed(res.text)).toBe(true);
            for (const s of api.seen) expect(s.url).toMatch(/^\/(api|ws)(\/|\?|$)/);
            expect(admin.seen).toHaveLength(0);
            for (const s of api.seen) {
              expect(s.headers['x-trellis-identity']).toBeUndefined();
              expect(s.headers.x_user).toBeUndefined();
              expect(s.headers['x-secret']).toBeUndefined();
            }
          },
        ),
        { seed: 16, numRuns: RUNS },
      );
      await probe();
    },
    20_000 + RUNS * 50,
  );

  it(
    `generated upstream answers (${RUNS} runs): a clean answer or a clean close, and the gateway keeps serving`,
    async () => {
      const status = fc.constantFrom(
        'HTTP/1.1 200 OK',
        'HTTP/1.1 204 No Content',
        'HTTP/1.1 304 Not Modified',
        'HTTP/1.1 500 Oops',
        'HTTP/1.1 503 Busy',
        'HTTP/1.1 999 X',
        'HTTP/1.0 200 OK',
        'HELLO',
        '',
      );
      const informational = fc.constantFrom(
        '',
        'HTTP/1.1 100 Continue\r\n\r\n',
        'HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n',
        'HTTP/1.1 102 Processing\r\n\r\n',
      );
      const framing = fc.constantFrom(
        'Content-Length: 2\r\n\r\nok',
        'Content-Length: 10\r\n\r\nok',
        'Transfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n',
        'Transfer-Encoding: chunked\r\n\r\nzz\r\nok\r\n0\r\n\r\n',
        'Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\nok\r\n0\r\n\r\n',
        'Content-Length: 2\r\nContent-Length: 3\r\n\r\nok',
        'Connection: close\r\n\r\nclose-delimited',
        'Bad Header\r\n\r\n',
        'X-Request-Id: upstream\r\nContent-Length: 0\r\n\r\n',
      );
      const end = fc.constantFrom('end', 'destroy', 'hang');
      await fc.assert(
        fc.asyncProperty(
          informational,
          status,
          framing,
          end,
          fc.constantFrom('GET', 'HEAD', 'POST'),
          async (i, s, f, e, m) => {
            hostileAnswer = `${i}${s}\r\n${f}\u0000${e}`;
            const res = await exchange(
              `${m} /raw/x HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
            );
            expect(res.closed).toBe(true);
            expect(wellFormed(res.text), JSON.stringify(res.text)).toBe(true);
            expect(res.text.match(/^x-request-id:/gim)?.length ?? 0).toBeLessThanOrEqual(1);
          },
        ),
        { seed: 1016, numRuns: RUNS },
      );
      for (const s of hostileSockets) s.destroy();
      await probe();
    },
    20_000 + RUNS * 50,
  );

  it('leaves no socket or timer behind', async () => {
    const after = await settledHandles(before);
    expect(after.TCPSocketWrap).toBeLessThanOrEqual(before.TCPSocketWrap);
    expect(after.Timeout).toBeLessThanOrEqual(before.Timeout + 2);
  });
});
