/**
 * Admission of one request, the same for plain requests and upgrades: framing, `Host`, the
 * canonical path, the health endpoints, then the route match on what the upstream will see
 * (405 with `Allow` on a method mismatch; `;` and encoded delimiters 400 unless the route opts
 * in, and even then never a different route than the path with `;params` removed names).
 * Returns the route, or undefined when the request was answered here.
 */

import type { RequestContext } from '../chain/RequestContext.js';
import { replyError } from '../chain/replyError.js';
import { BadPathError, MethodNotAllowedError, RouteNotFoundError } from '../errors.js';
import { canonicalPath } from '../proxy/canonicalPath.js';
import type { RouteRuntime } from '../proxy/Generation.js';
import { checkFraming, checkHost } from './framing.js';

export function routeRequest(ctx: RequestContext): RouteRuntime | undefined {
  const req = ctx.req;
  const refused = checkFraming(req) ?? checkHost(req);
  if (refused !== undefined) {
    replyError(ctx, refused);
    return undefined;
  }
  const target = canonicalPath(req.url ?? '');
  if (typeof target === 'string') {
    replyError(ctx, new BadPathError(`bad request target: ${target}`));
    return undefined;
  }
  ctx.path = target.path;
  ctx.search = target.search;
  const gen = ctx.gen;
  if (ctx.upgrade === undefined && ctx.gateway.observe(req, ctx.res)) {
    ctx.release();
    return undefined;
  }
  const method = req.method ?? 'GET';
  const preflight =
    method === 'OPTIONS' && req.headers['access-control-request-method'] !== undefined;
  const match = gen.table.match(target.path, method, req.headers.host, preflight);
  if (match === undefined) {
    replyError(ctx, new RouteNotFoundError(`no route for ${method} ${target.path}`));
    return undefined;
  }
  if ('allow' in match) {
    const allow = match.allow.join(', ');
    replyError(
      ctx,
      new MethodNotAllowedError(`${method} is not allowed on ${target.path}`, {
        allow: match.allow,
      }),
      { allow },
    );
    return undefined;
  }
  const route = match.route;
  ctx.route = route;
  ctx.routeId = route.id;
  ctx.params = match.params;
  ctx.rest = match.rest;
  if (target.delimiters === true) {
    const plain = target.path.replace(/;[^/]*/g, '');
    const other = route.config.allowEncodedDelimiters
      ? gen.table.match(plain, method, req.headers.host, preflight)
      : undefined;
    if (
      !route.config.allowEncodedDelimiters ||
      other === undefined ||
      'allow' in other ||
      other.route !== route
    ) {
      replyError(
        ctx,
        new BadPathError(
          'the path contains ";" or an encoded delimiter (%3B, %2F, %5C, %2E), which this route does not accept',
        ),
      );
      return undefined;
    }
  }
  return route;
}
