/**
 * Hop-by-hop headers (RFC 9110 §7.6.1) and the headers a `Connection` header names are
 * connection-specific: the gateway strips them in both directions, after user hooks have run,
 * so a hook cannot smuggle one through. `te: trailers` is kept (gRPC needs it).
 */

/** Always hop-by-hop, lower case. */
export const HOP_BY_HOP: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'http2-settings',
]);

/** The header names listed in a `Connection` header value, lower case. */
export function connectionTokens(value: string | string[] | undefined): Set<string> | undefined {
  if (value === undefined) return undefined;
  // The common values name no header: skip the split.
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive') return undefined;
  const joined = Array.isArray(value) ? value.join(',') : value;
  let out: Set<string> | undefined;
  for (const token of joined.split(',')) {
    const name = token.trim().toLowerCase();
    if (name === '' || name === 'close' || name === 'keep-alive') continue;
    out ??= new Set();
    out.add(name);
  }
  return out;
}

/**
 * Removes hop-by-hop headers and those named in `named` (by default the record's own
 * `connection` header; pass the original one when hooks may have edited the record) from a
 * lower-case header record, in place. Keeps `te` only when it is exactly `trailers`.
 */
export function stripHopByHop(
  headers: Record<string, string | string[] | undefined>,
  named: ReadonlySet<string> | undefined = connectionTokens(headers.connection),
): void {
  const te = headers.te;
  for (const name of HOP_BY_HOP) {
    if (headers[name] !== undefined) delete headers[name];
  }
  if (named !== undefined) for (const name of named) delete headers[name];
  if (typeof te === 'string' && te.trim().toLowerCase() === 'trailers' && !named?.has('te')) {
    headers.te = 'trailers';
  }
}
