/**
 * The framing firewall: what Node's HTTP parser lets through but a proxy must refuse (RFC 9112),
 * and the answers for what the parser itself refuses (`clientError`) or hands to a `connect`
 * listener. Every answer is problem+json with a code from the registry.
 */
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { PROBLEM_CONTENT_TYPE, problemOf, type TrellisError } from '@trellis/core';
import {
  BadFramingError,
  BadHostError,
  HeadersTooLargeError,
  MethodNotAllowedError,
  RequestTimeoutError,
} from '../errors.js';

/** Why the request framing is refused, or undefined. */
export function checkFraming(req: IncomingMessage): TrellisError | undefined {
  const headers = req.headers;
  const te = headers['transfer-encoding'];
  const cl = headers['content-length'];
  if (te === undefined && cl === undefined) return undefined;
  if (te !== undefined && cl !== undefined) {
    return new BadFramingError('both Content-Length and Transfer-Encoding');
  }
  if (te !== undefined && te.trim().toLowerCase() !== 'chunked') {
    return new BadFramingError(`unsupported Transfer-Encoding: ${te}`);
  }
  if (cl !== undefined && !/^\d{1,15}$/.test(cl))
    return new BadFramingError('invalid Content-Length');
  // Node keeps the first of duplicate Content-Length / Transfer-Encoding headers: look again.
  if (countRaw(req, 'content-length') + countRaw(req, 'transfer-encoding') > 1) {
    return new BadFramingError('duplicate Content-Length or Transfer-Encoding');
  }
  return undefined;
}

/** `host[:port]`: a reg-name, IPv4 or bracketed IPv6 literal (RFC 3986 §3.2.2). */
const HOST = /^(?:[A-Za-z0-9\-._~!$&'()*+,;=]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/** RFC 9112 §3.2: exactly one valid Host (HTTP/1.1 needs one; HTTP/1.0 may omit it). */
export function checkHost(req: IncomingMessage): TrellisError | undefined {
  const host = req.headers.host;
  if (host === undefined) {
    return req.httpVersionMajor === 1 && req.httpVersionMinor === 0
      ? undefined
      : new BadHostError('the request has no Host header');
  }
  if (countRaw(req, 'host') > 1)
    return new BadHostError('the request has more than one Host header');
  if (!HOST.test(host)) return new BadHostError('the Host header is not host[:port]');
  return undefined;
}

function countRaw(req: IncomingMessage, lower: string): number {
  const raw = req.rawHeaders;
  let seen = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === lower.length && name.toLowerCase() === lower) seen++;
  }
  return seen;
}

/** Writes `err` as a whole problem+json answer on a raw socket and closes it. */
export function answerOnSocket(
  socket: Duplex,
  err: TrellisError,
  headers: Record<string, string> = {},
): void {
  const p = problemOf(err);
  const body = JSON.stringify(p);
  let head = `HTTP/1.1 ${p.status} ${p.title}\r\nconnection: close\r\ncontent-type: ${PROBLEM_CONTENT_TYPE}\r\ncache-control: no-store\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`;
  for (const [k, v] of Object.entries(headers)) head += `${k}: ${v}\r\n`;
  socket.end(`${head}\r\n${body}`);
}

/** `clientError`: what Node's parser refused (malformed request, bad chunk size, slowloris). */
export function onClientError(err: Error & { code?: string }, socket: Duplex): void {
  const res = (socket as Socket & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
  if (!socket.writable || res?.headersSent === true) {
    socket.destroy();
    return;
  }
  const e =
    err.code === 'HPE_HEADER_OVERFLOW'
      ? new HeadersTooLargeError('request headers too large')
      : err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? new RequestTimeoutError('request headers not received in time')
        : new BadFramingError(`malformed request (${err.code ?? 'parse error'})`);
  answerOnSocket(socket, e);
}

/** `connect`: the gateway does not tunnel CONNECT (405, as nginx answers). */
export function onConnect(_req: IncomingMessage, socket: Duplex): void {
  answerOnSocket(
    socket,
    new MethodNotAllowedError('CONNECT is not supported by this gateway', { allow: [] }),
    { allow: 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS' },
  );
}
