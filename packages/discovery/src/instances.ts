import type { Instance } from '@trellis/core';
import { z } from 'zod';

/**
 * The one rule every resolver applies to an instance URL, given (static lists, `register()`) or
 * read back (etcd values, Consul and DNS answers): an absolute `http:` or `https:` URL with a
 * host. `javascript:`, `file:`, `data:` and relative URLs are refused; registering one throws a
 * `ConfigError`, and a resolver never serves one. Returns what is wrong, or `undefined`.
 */
export function instanceUrlProblem(url: unknown): string | undefined {
  if (typeof url !== 'string') return 'must be a URL string';
  const shown = JSON.stringify(url.length > 80 ? `${url.slice(0, 80)}...` : url);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return `${shown} is not a valid URL`;
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    return `${shown} must be an http: or https: URL`;
  }
  if (parsed.hostname === '') return `${shown} has no host`;
  return undefined;
}

/** The zod field of an instance URL ({@link instanceUrlProblem}'s rule). */
export const instanceUrlSchema = z.string().superRefine((value, ctx) => {
  const problem = instanceUrlProblem(value);
  if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
});

/**
 * Turns a base URL into an instance whose id is `host:port` (the default port of the scheme when
 * the URL has none). Throws a TypeError naming the URL when it is not an http(s) URL.
 */
export function instanceFromUrl(url: string): Instance {
  const problem = instanceUrlProblem(url);
  if (problem !== undefined) throw new TypeError(problem);
  const parsed = new URL(url);
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
