/**
 * Route matching: by canonical path (a prefix such as `/api`, or a pattern such as
 * `/orders/:id`), by host, then by method. The most specific path wins: more literal segments
 * first, then more segments, then config order. A path match wins over a method mismatch: when
 * the most specific path's routes do not take the method the answer is 405 with `Allow`, never a
 * fall-through to a less specific route. `HEAD` is taken wherever `GET` is; a route without
 * `methods` takes every method but `TRACE` and `CONNECT`; a CORS preflight (`OPTIONS` with
 * `Access-Control-Request-Method`) is taken by a route with `cors`, whose stage answers it.
 */

/** What the table needs to know about a route. */
export interface RouteMatcherSpec {
  /** `/api` (prefix: matches `/api` and `/api/...`), `/orders/:id` (pattern: exact), `/orders/:id/*`. */
  readonly path: string;
  /** Upper-case methods; empty or undefined = any. */
  readonly methods?: readonly string[] | undefined;
  /** Lower-case host names without port; `*.example.com` matches one or more labels. */
  readonly hosts?: readonly string[] | undefined;
  /** The route answers CORS preflights itself (it has a `cors` stage). */
  readonly preflight?: boolean;
}

/** The path matched but no route there takes the method: answer 405 with these. */
export interface MethodMismatch {
  readonly allow: readonly string[];
}

/** Methods a route without `methods` takes (TRACE and CONNECT only when listed). */
export const DEFAULT_METHODS: readonly string[] = [
  'GET',
  'HEAD',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'OPTIONS',
];

/** A matched route: the route, its path params, and the part of the path the route matched. */
export interface RouteMatch<R> {
  readonly route: R;
  readonly params: Readonly<Record<string, string>>;
  /** Path after the matched prefix (`''` or starting with `/`). */
  readonly rest: string;
}

interface Compiled<R> {
  readonly route: R;
  readonly segments: readonly string[];
  /** Index of each `:param` segment and its name. */
  readonly paramAt: readonly (string | undefined)[];
  /** Prefix routes (no params, or ending in `/*`) match deeper paths too. */
  readonly prefix: boolean;
  /** Literal prefix (no params): matched with startsWith, no split. */
  readonly literal: string | undefined;
  readonly methods: ReadonlySet<string> | undefined;
  readonly hosts: readonly string[] | undefined;
  readonly score: number;
  readonly order: number;
  /** Same key = same path pattern and hosts (competing only by method). */
  readonly key: string;
  readonly preflight: boolean;
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** An immutable route table. Build a new one to change routes (hot reload swaps tables). */
export class RouteTable<R extends RouteMatcherSpec> {
  readonly #routes: readonly Compiled<R>[];

  constructor(routes: readonly R[]) {
    const compiled = routes.map((route, order) => compile(route, order));
    compiled.sort((a, b) => b.score - a.score || a.order - b.order);
    this.#routes = compiled;
  }

  /**
   * The most specific route for the canonical `path` and `host` that takes `method`; a
   * `MethodMismatch` when the most specific path has routes but none takes the method; undefined
   * when no path matches.
   */
  match(
    path: string,
    method: string,
    host: string | undefined,
    preflight = false,
  ): RouteMatch<R> | MethodMismatch | undefined {
    let key: string | undefined;
    let allow: Set<string> | undefined;
    for (const c of this.#routes) {
      if (key !== undefined && c.key !== key) continue;
      if (c.hosts !== undefined && !hostMatches(c.hosts, host)) continue;
      const m = matchPath(c, path);
      if (m === undefined) continue;
      if (accepts(c, method, preflight)) return m;
      key = c.key;
      allow ??= new Set();
      for (const x of c.methods ?? DEFAULT_METHODS) allow.add(x);
      if (allow.has('GET')) allow.add('HEAD');
    }
    return allow === undefined ? undefined : { allow: [...allow] };
  }
}

function accepts(c: Compiled<unknown>, method: string, preflight: boolean): boolean {
  const m = c.methods;
  if (m === undefined) return method !== 'TRACE' && method !== 'CONNECT';
  if (m.has(method)) return true;
  if (method === 'HEAD') return m.has('GET');
  return preflight && c.preflight && method === 'OPTIONS';
}

function matchPath<R>(c: Compiled<R>, path: string): RouteMatch<R> | undefined {
  if (c.literal !== undefined) {
    const lit = c.literal;
    if (lit === '/') return { route: c.route, params: EMPTY, rest: path };
    if (!path.startsWith(lit)) return undefined;
    if (path.length === lit.length) return { route: c.route, params: EMPTY, rest: '' };
    if (path.charCodeAt(lit.length) !== 47) return undefined;
    return { route: c.route, params: EMPTY, rest: path.slice(lit.length) };
  }
  return matchPattern(c, path);
}

function compile<R extends RouteMatcherSpec>(route: R, order: number): Compiled<R> {
  let path = route.path;
  let wildcard = false;
  if (path.endsWith('/*')) {
    wildcard = true;
    path = path.slice(0, -2) || '/';
  }
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  const segments = path === '/' ? [] : path.slice(1).split('/');
  const paramAt = segments.map((s) => (s.startsWith(':') ? s.slice(1) : undefined));
  const hasParams = paramAt.some((p) => p !== undefined);
  const literals = paramAt.filter((p) => p === undefined).length;
  return {
    route,
    segments,
    paramAt,
    prefix: !hasParams || wildcard,
    literal: hasParams ? undefined : path,
    methods: route.methods?.length ? new Set(route.methods) : undefined,
    hosts: route.hosts?.length ? route.hosts : undefined,
    // Literal segments weigh most; host/method constraints break ties before order.
    score:
      literals * 1000 +
      segments.length * 10 +
      (route.hosts?.length ? 2 : 0) +
      (route.methods?.length ? 1 : 0),
    order,
    key: `${wildcard ? `${path}/*` : path} ${route.hosts?.join(',') ?? ''}`,
    preflight: route.preflight === true,
  };
}

function matchPattern<R>(c: Compiled<R>, path: string): RouteMatch<R> | undefined {
  const parts = path.split('/');
  // parts[0] is '' (path starts with '/'); a trailing '' comes from a trailing slash.
  const n = c.segments.length;
  if (parts.length - 1 < n) return undefined;
  const params: Record<string, string> = {};
  for (let i = 0; i < n; i++) {
    const part = parts[i + 1] as string;
    const name = c.paramAt[i];
    if (name !== undefined) {
      if (part === '') return undefined;
      params[name] = part;
    } else if (part !== c.segments[i]) {
      return undefined;
    }
  }
  const restParts = parts.slice(n + 1);
  const rest = restParts.length === 0 ? '' : `/${restParts.join('/')}`;
  if (!c.prefix && rest !== '' && rest !== '/') return undefined;
  return { route: c.route, params, rest };
}

function hostMatches(hosts: readonly string[], host: string | undefined): boolean {
  if (host === undefined) return false;
  const name = stripPort(host.toLowerCase());
  for (const h of hosts) {
    if (h === name) return true;
    if (h.startsWith('*.') && name.endsWith(h.slice(1)) && name.length > h.length - 1) return true;
  }
  return false;
}

function stripPort(host: string): string {
  if (host.startsWith('[')) {
    const end = host.indexOf(']');
    return end === -1 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(':');
  return colon === -1 ? host : host.slice(0, colon);
}
