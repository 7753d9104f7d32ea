/**
 * The mount pattern behind an Express `req.baseUrl`: a router mounted at `/tenants/:tid` gives
 * `req.baseUrl === '/tenants/t-0'`, and a route template built from that puts every tenant id
 * in the metrics (one `http_route` series per tenant). This walks the app's router layers the
 * way Express matched them and gives `/tenants/:tid` back (Express 4 and 5).
 */

/** The parts of an Express 4 or 5 (router 2) layer this reads. */
interface Layer {
  route?: unknown;
  handle?: { stack?: unknown };
  /** Express 5 (router 2): the path the layer was declared with. */
  rawPath?: unknown;
  /** Express 5: `(path) => { path, params } | false`. */
  matchers?: ((path: string) => { path: string; params: Record<string, unknown> } | false)[];
  /** Express 4: the compiled path and its parameter names. */
  regexp?: RegExp & { fast_slash?: boolean };
  keys?: { name: string | number }[];
  slash?: boolean;
}

/** The router stack of an Express 4 (`_router`) or 5 (`router`) app. */
export function routerStackOf(app: unknown): unknown {
  const holder = app as { _router?: { stack?: unknown }; router?: { stack?: unknown } } | undefined;
  if (holder === undefined || holder === null) return undefined;
  return holder._router !== undefined ? holder._router.stack : holder.router?.stack;
}

/**
 * The pattern `baseUrl` was matched by in `stack` (the root app's router stack), e.g.
 * `/tenants/:tid/admin`, or undefined when the layers do not explain it (a mounted sub-app
 * whose own mount path is unknown here): the caller falls back to what it had.
 */
export function mountPattern(stack: unknown, baseUrl: string): string | undefined {
  if (baseUrl === '') return '';
  let out = '';
  let rest = baseUrl;
  let layers = stack;
  while (rest !== '' && rest !== '/') {
    if (!Array.isArray(layers)) return undefined;
    let next: unknown;
    let matched = false;
    for (const layer of layers as Layer[]) {
      if (layer.route !== undefined) continue;
      if (layer.slash === true || layer.regexp?.fast_slash === true) {
        // A router used without a path (`app.use(router)`): its own mounts may explain `rest`.
        const inner = Array.isArray(layer.handle?.stack)
          ? mountPattern(layer.handle?.stack, rest)
          : undefined;
        if (inner !== undefined) return out + inner;
        continue;
      }
      const m = matchLayer(layer, rest);
      if (m === undefined || m.path === '' || !rest.startsWith(m.path)) continue;
      const tail = rest.slice(m.path.length);
      if (tail !== '' && !tail.startsWith('/')) continue;
      out += typeof layer.rawPath === 'string' ? layer.rawPath : templatize(m.path, m.params);
      rest = tail;
      next = layer.handle?.stack;
      matched = true;
      break;
    }
    if (!matched) return undefined;
    layers = next;
  }
  return out;
}

function matchLayer(
  layer: Layer,
  path: string,
): { path: string; params: Record<string, unknown> } | undefined {
  if (Array.isArray(layer.matchers)) {
    for (const match of layer.matchers) {
      const m = match(path);
      if (m) return m;
    }
    return undefined;
  }
  if (layer.regexp instanceof RegExp) {
    const m = layer.regexp.exec(path);
    if (m === null || m.index !== 0) return undefined;
    const params: Record<string, unknown> = {};
    const keys = layer.keys ?? [];
    for (let i = 1; i < m.length; i++) {
      const key = keys[i - 1];
      if (key !== undefined && m[i] !== undefined) params[key.name] = m[i];
    }
    return { path: m[0].endsWith('/') ? m[0].slice(0, -1) : m[0], params };
  }
  return undefined;
}

/** `/tenants/t-0` with `{ tid: 't-0' }` -> `/tenants/:tid`. */
function templatize(path: string, params: Record<string, unknown>): string {
  const names = Object.keys(params);
  if (names.length === 0) return path;
  return path
    .split('/')
    .map((segment) => {
      for (const name of names) {
        const value = params[name];
        if (value === segment || value === safeDecode(segment)) return `:${name}`;
      }
      return segment;
    })
    .join('/');
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}
