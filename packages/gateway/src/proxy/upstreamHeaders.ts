/**
 * The headers of an upstream request, built the same way for the HTTP proxy and the WebSocket
 * tunnel: the client's headers minus hop-by-hop ones (and those its `Connection` names), minus
 * the identity header, `Expect` and (by default) names with `_`; forwarding headers and the
 * request id kept only from trusted proxies, `X-Forwarded-*` and `Forwarded` always written with
 * the peer; the caller's deadline (`x-trellis-deadline-ms`) kept only from a trusted proxy and
 * otherwise written from the route's timeout; then the stages' edits.
 */
import type { Socket } from 'node:net';
import { DEADLINE_HEADER } from '@trellis/core';
import type { RequestContext } from '../chain/RequestContext.js';
import { connectionTokens, HOP_BY_HOP } from './hopByHop.js';
import { forwardedNode } from './TrustedProxies.js';

export type HeaderRecord = Record<string, string | string[] | undefined>;

/** Headers only a trusted proxy may send (replaced for untrusted peers). */
const FORWARDING: ReadonlySet<string> = new Set([
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'forwarded',
  DEADLINE_HEADER,
]);

/**
 * `deadlineMs` is the time the upstream gets (the route's timeout, or the trusted caller's
 * shorter deadline), written as `x-trellis-deadline-ms`.
 */
export function upstreamHeaders(ctx: RequestContext, deadlineMs: number): HeaderRecord {
  const req = ctx.req;
  const gen = ctx.gen;
  const route = ctx.route;
  const src = req.headers;
  const named = connectionTokens(src.connection);
  const peerTrusted = ctx.peerTrusted;
  const removals = ctx.upstreamHeaderRemovals;
  const hostPolicy = route?.config.host ?? 'upstream';
  const identity = gen.identityHeader;
  const dropUnderscores = gen.config.underscoreHeaders === 'drop';
  // Copy instead of delete (keeps the object fast).
  const h: HeaderRecord = {};
  for (const key in src) {
    if (HOP_BY_HOP.has(key) || key === identity || key === 'expect') continue;
    if (named?.has(key) || removals?.has(key)) continue;
    if (!peerTrusted && FORWARDING.has(key)) continue;
    if (key === 'host' && hostPolicy !== 'preserve') continue;
    if (dropUnderscores && key.includes('_')) continue;
    h[key] = src[key];
  }
  if (
    typeof src.te === 'string' &&
    src.te.trim().toLowerCase() === 'trailers' &&
    !named?.has('te')
  ) {
    h.te = 'trailers';
  }
  const edits = ctx.upstreamHeaderEdits;
  if (edits !== undefined) {
    for (const name of Object.keys(edits)) {
      const lower = name.toLowerCase();
      const value = edits[name] as string;
      if (HOP_BY_HOP.has(lower) || named?.has(lower)) {
        if (lower === 'te' && value.trim().toLowerCase() === 'trailers') h.te = 'trailers';
        continue;
      }
      h[lower] = value;
    }
  }
  h[ctx.gateway.requestIdHeader] = ctx.requestId;
  const peer = ctx.peer;
  const proto = (req.socket as Socket & { encrypted?: boolean }).encrypted ? 'https' : 'http';
  const host = src.host ?? '';
  const inXff = peerTrusted ? src['x-forwarded-for'] : undefined;
  h['x-forwarded-for'] = inXff ? `${inXff}, ${peer}` : peer;
  h['x-forwarded-proto'] = (peerTrusted && src['x-forwarded-proto']) || proto;
  h['x-forwarded-host'] = (peerTrusted && src['x-forwarded-host']) || host;
  const inFwd = peerTrusted ? src.forwarded : undefined;
  // `host` passed checkHost (no `"` or `\`): it can be quoted as is.
  const node = `for=${forwardedNode(peer)};host="${host}";proto=${proto}`;
  h.forwarded = inFwd ? `${inFwd}, ${node}` : node;
  h[DEADLINE_HEADER] = String(deadlineMs);
  if (hostPolicy !== 'upstream' && hostPolicy !== 'preserve') h.host = hostPolicy;
  return h;
}
