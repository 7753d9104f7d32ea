import { createHash } from 'node:crypto';

/**
 * A request's fingerprint: SHA-256 (hex) over its method, target (path and query) and a digest
 * of its body. The same key with another fingerprint is a different request (422).
 *
 * `body` is what the server framework parsed: bytes or text are hashed as they are; a parsed
 * JSON value is hashed in a canonical form (object keys sorted), so `{"a":1,"b":2}` and
 * `{"b":2,"a":1}` are the same request; `undefined` or `null` means no body.
 */
export function fingerprint(method: string, target: string, body: unknown): string {
  const h = createHash('sha256');
  h.update(method.toUpperCase());
  h.update('\n');
  h.update(target);
  h.update('\n');
  if (body === undefined || body === null) {
    h.update('-');
  } else if (typeof body === 'string') {
    h.update('s');
    h.update(body);
  } else if (body instanceof Uint8Array) {
    h.update('b');
    h.update(body);
  } else {
    h.update('j');
    h.update(canonicalJson(body));
  }
  return h.digest('hex');
}

/** JSON with object keys sorted, so equal values give equal text. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
    const sorted: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) sorted[k] = (v as Record<string, unknown>)[k];
    return sorted;
  });
}
