import type { Instance } from '@trellis/core';

/**
 * Turns a base URL into an instance whose id is `host:port` (the default port of the scheme when
 * the URL has none). Throws a TypeError naming the URL when it is not an http(s) URL.
 */
export function instanceFromUrl(url: string): Instance {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`"${url}" is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new TypeError(`"${url}" must be an http: or https: URL`);
  }
  const port = parsed.port || (parsed.protocol === 'https:' ? '443' : '80');
  const base = `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  return { id: `${parsed.hostname}:${port}`, url: base };
}

/** Formats `host:port`, bracketing IPv6 literals. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

function sameMetadata(
  a: Readonly<Record<string, string>> | undefined,
  b: Readonly<Record<string, string>> | undefined,
): boolean {
  if (a === b) return true;
  const ak = a ? Object.keys(a) : [];
  const bk = b ? Object.keys(b) : [];
  if (ak.length !== bk.length) return false;
  for (const k of ak) if (a![k] !== b?.[k]) return false;
  return true;
}

/** True when two lists hold the same instances in the same order. */
export function sameInstances(a: readonly Instance[], b: readonly Instance[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (
      x.id !== y.id ||
      x.url !== y.url ||
      (x.weight ?? 1) !== (y.weight ?? 1) ||
      !sameMetadata(x.metadata, y.metadata)
    ) {
      return false;
    }
  }
  return true;
}

/** Sorts by id so that lists from backends with unstable order compare equal. */
export function sortInstances(list: Instance[]): Instance[] {
  return list.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
