/**
 * The one place a `RequestContext` is made, for plain requests and upgrades alike: request id
 * (a client's kept only from a trusted proxy), peer and client IP after the trusted-proxy rules.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Generation } from '../proxy/Generation.js';
import { normalizeIp } from '../proxy/TrustedProxies.js';
import { type ContextHost, RequestContext } from './RequestContext.js';

const REQUEST_ID = /^[A-Za-z0-9._:@=+/-]{1,200}$/;

export interface ContextFactoryHost extends ContextHost {
  readonly clock: { now(): number };
  nextRequestId(): string;
}

export function createContext(
  host: ContextFactoryHost,
  gen: Generation,
  req: IncomingMessage,
  res: ServerResponse,
  upgrade?: { readonly socket: Duplex; readonly head: Buffer },
): RequestContext {
  const peer = normalizeIp(req.socket.remoteAddress ?? '');
  const trusted = gen.trusted;
  const peerTrusted = trusted.enabled && trusted.isTrustedPeer(peer);
  const incomingId = peerTrusted ? req.headers[host.requestIdHeader] : undefined;
  const requestId =
    typeof incomingId === 'string' && REQUEST_ID.test(incomingId)
      ? incomingId
      : host.nextRequestId();
  let clientIp = peer;
  if (peerTrusted) {
    const xff = req.headers['x-forwarded-for'];
    clientIp = trusted.clientIp(peer, typeof xff === 'string' ? xff : xff?.join(','));
  }
  gen.enter();
  return new RequestContext(
    req,
    res,
    host,
    gen,
    requestId,
    clientIp,
    peer,
    peerTrusted,
    host.clock.now(),
    upgrade,
  );
}
