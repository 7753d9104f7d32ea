import type { IncomingMessage, ServerResponse } from 'node:http';
import { getRequestContext } from '../../context.js';
import {
  type ConfigIssue,
  MethodNotAllowedError,
  PayloadTooLargeError,
  RequestValidationError,
  UnsupportedMediaTypeError,
} from '../../errors.js';
import { describeThrown } from '../../faults/describeThrown.js';
import { problem, problemOf, writeProblem } from '../../problem/Problem.js';
import { isTrellisError } from '../../TrellisError.js';
import {
  allowByPath,
  type Contract,
  type HandlerAnswer,
  type ServedEndpoint,
} from './compileContract.js';
import { HandlerArgs } from './HandlerArgs.js';
import {
  decodeSegment,
  isJsonContentType,
  normalizeQuery,
  parseQueryString,
  validateParts,
} from './requestParts.js';
import { writeStream } from './writeStream.js';

/** A node request as an Express app hands it on (maybe with a body parsed already). */
export interface NodeRequest extends IncomingMessage {
  body?: unknown;
  _body?: boolean;
  route?: unknown;
}

interface Route {
  /** Path segments; `undefined` marks a parameter. */
  readonly segments: readonly (string | undefined)[];
  readonly names: readonly string[];
  readonly byMethod: Map<string, ServedEndpoint>;
  readonly allow: string;
  readonly template: string;
}

/** The answer with `body` sent as JSON; `status` already checked. */
function sendJson(res: ServerResponse, answer: HandlerAnswer, head: boolean): void {
  res.statusCode = answer.status;
  const h = answer.headers;
  if (h !== undefined) for (const k in h) res.setHeader(k, h[k] as string);
  if (answer.body === undefined || answer.status === 204 || answer.status === 304) {
    res.end();
    return;
  }
  const text = JSON.stringify(answer.body);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(text));
  res.end(head ? undefined : text);
}

const requestIdOf = (req: IncomingMessage): string | undefined => {
  const id = getRequestContext()?.requestId ?? req.headers['x-request-id'];
  return typeof id === 'string' ? id : undefined;
};

/**
 * A node `(req, res, next)` handler serving a compiled contract: routes by path template,
 * answers 405 for undeclared methods on declared paths, reads and checks the JSON body
 * (415, 413, malformed JSON), validates every part (400 naming each field), runs the handler,
 * checks its answer (500 on a contract violation) and writes it. Paths it does not declare go
 * to `next()`.
 */
export function createNodeHandler(contract: Contract) {
  const statics = new Map<string, Route>();
  const dynamic: Route[] = [];
  const allow = allowByPath(contract.endpoints);
  for (const ep of contract.endpoints) {
    const key = ep.path.replace(/:[^/]+/g, ':');
    const existing =
      ep.paramNames.length === 0 ? statics.get(ep.path) : dynamic.find((r) => r.template === key);
    if (existing) {
      existing.byMethod.set(ep.method, ep);
      continue;
    }
    const route: Route = {
      segments: ep.path.split('/').map((s) => (s.startsWith(':') ? undefined : s)),
      names: ep.paramNames,
      byMethod: new Map([[ep.method, ep]]),
      allow: [...new Set(allow.get(key))].join(', '),
      template: key,
    };
    if (ep.paramNames.length === 0) statics.set(ep.path, route);
    else dynamic.push(route);
  }
  const openapiPath = contract.options.openapi?.path;
  const bodyLimit = contract.options.bodyLimit;

  function match(path: string): { route: Route; values: string[] } | undefined {
    const s = statics.get(path);
    if (s !== undefined) return { route: s, values: [] };
    if (dynamic.length === 0) return undefined;
    const parts = path.split('/');
    outer: for (const route of dynamic) {
      const segs = route.segments;
      if (segs.length !== parts.length) continue;
      const values: string[] = [];
      for (let i = 0; i < segs.length; i++) {
        const seg = segs[i];
        const part = parts[i] as string;
        if (seg === undefined) {
          if (part === '') continue outer;
          values.push(part);
        } else if (seg !== part) continue outer;
      }
      return { route, values };
    }
    return undefined;
  }

  return function contractHandler(
    req: NodeRequest,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    const method = req.method ?? 'GET';
    if (
      openapiPath !== undefined &&
      path === openapiPath &&
      (method === 'GET' || method === 'HEAD')
    ) {
      const text = contract.openApiText();
      res.statusCode = 200;
      res.setHeader('content-type', 'application/json; charset=utf-8');
      res.setHeader('content-length', Buffer.byteLength(text));
      res.end(method === 'HEAD' ? undefined : text);
      return;
    }
    const found = match(path);
    if (found === undefined) {
      next();
      return;
    }
    const { route, values } = found;
    const ep =
      route.byMethod.get(method) ?? (method === 'HEAD' ? route.byMethod.get('GET') : undefined);
    if (ep === undefined) {
      const err = new MethodNotAllowedError(`${method} is not allowed on ${route.template}`, {
        allow: route.allow.split(', '),
      });
      drain(req);
      writeProblem(res, problemOf(err, { requestId: requestIdOf(req) }), { allow: route.allow });
      return;
    }
    // Lets an Express app's metrics record the route template.
    try {
      req.route = { path: ep.path };
    } catch {
      // Not writable: fine.
    }
    const issues: ConfigIssue[] = [];
    const params: Record<string, unknown> = {};
    for (let i = 0; i < values.length; i++) {
      const name = route.names[i] as string;
      const v = decodeSegment(values[i] as string);
      if (v === undefined)
        issues.push({ path: `params.${name}`, message: 'malformed percent-encoding' });
      else params[name] = v;
    }
    const query =
      q === -1
        ? Object.create(null)
        : normalizeQuery(ep, parseQueryString(url.slice(q + 1), issues), issues);
    if (ep.body === undefined) {
      run(ep, req, res, params, query, undefined, issues);
      return;
    }
    if (req._body === true) {
      // A body parser upstream (express.json()) has read it already.
      run(ep, req, res, params, query, req.body, issues);
      return;
    }
    readJsonBody(req, bodyLimit).then(
      (body) => run(ep, req, res, params, query, body, issues),
      (err: unknown) => {
        if (isTrellisError(err) && err.code === RequestValidationError.code) {
          issues.push(...((err as RequestValidationError).issues as ConfigIssue[]));
          fail(req, res, issues);
          return;
        }
        const closeAfter = err instanceof PayloadTooLargeError;
        writeProblem(
          res,
          problemOf(err, { requestId: requestIdOf(req) }),
          closeAfter ? { connection: 'close' } : undefined,
        );
        if (!isTrellisError(err))
          contract.logger.error({ err: describeThrown(err) }, 'serve: reading a body failed');
      },
    );
  };

  function fail(req: IncomingMessage, res: ServerResponse, issues: ConfigIssue[]): void {
    const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    writeProblem(
      res,
      problem({
        status: 400,
        code: RequestValidationError.code,
        detail: `invalid request: ${detail}`,
        requestId: requestIdOf(req),
        errors: issues,
      }),
    );
  }

  function run(
    ep: ServedEndpoint,
    req: NodeRequest,
    res: ServerResponse,
    params: Record<string, unknown>,
    query: Record<string, unknown>,
    body: unknown,
    issues: ConfigIssue[],
  ): void {
    const parts = validateParts(ep, { params, query, body, headers: req.headers }, issues);
    if (!parts.ok) {
      fail(req, res, parts.issues);
      return;
    }
    let result: unknown;
    try {
      result = ep.handler(
        new HandlerArgs(parts.params, parts.query, parts.body, parts.headers, req, res),
      );
    } catch (err) {
      failed(ep, req, res, err);
      return;
    }
    if (result instanceof Promise) {
      result.then(
        (answer) => answerWith(ep, req, res, answer),
        (err: unknown) => failed(ep, req, res, err),
      );
    } else answerWith(ep, req, res, result);
  }

  function answerWith(
    ep: ServedEndpoint,
    req: NodeRequest,
    res: ServerResponse,
    answer: unknown,
  ): void {
    if (contract.checkAnswer(ep, answer) !== undefined) {
      writeProblem(
        res,
        problem({
          status: 500,
          code: 'TRELLIS_RESPONSE_INVALID',
          detail: 'internal error',
          requestId: requestIdOf(req),
        }),
      );
      return;
    }
    const a = answer as HandlerAnswer;
    if (ep.stream !== undefined && a.status === 200) {
      void writeStream(contract, ep, a.body as AsyncIterable<unknown>, res, a.headers);
      return;
    }
    sendJson(res, a, req.method === 'HEAD');
  }

  function failed(
    ep: ServedEndpoint,
    req: IncomingMessage,
    res: ServerResponse,
    err: unknown,
  ): void {
    const p = problemOf(err, { requestId: requestIdOf(req) });
    if (p.status >= 500) {
      contract.logger.error(
        { endpoint: ep.name, err: describeThrown(err), code: p.code },
        `serve: ${ep.name} failed: ${describeThrown(err)}`,
      );
    }
    writeProblem(res, p);
  }
}

/** Discards a request body we will not read, so the connection stays usable. */
function drain(req: IncomingMessage): void {
  if (!req.complete) req.resume();
}

/**
 * Reads a JSON body up to `limit` bytes. Rejects with `PayloadTooLargeError` (413, by
 * Content-Length or as soon as the bytes pass it), `UnsupportedMediaTypeError` (415) for a body
 * that is not declared JSON, `RequestValidationError` naming `body` for malformed JSON.
 * Resolves undefined for an empty body.
 */
export function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  const declared = req.headers['content-length'];
  const length = declared === undefined ? undefined : Number(declared);
  const chunked = req.headers['transfer-encoding'] !== undefined;
  if (!chunked && (length === undefined || length === 0)) return Promise.resolve(undefined);
  if (length !== undefined && length > limit) {
    req.resume();
    return Promise.reject(tooLarge(limit));
  }
  if (!isJsonContentType(req.headers['content-type'])) {
    req.resume();
    const type = req.headers['content-type'] ?? '(none)';
    return Promise.reject(
      new UnsupportedMediaTypeError(`content-type ${type} is not supported: send application/json`),
    );
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        done = true;
        req.off('data', onData);
        req.resume();
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    req.on('data', onData);
    req.once('error', (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
    req.once('end', () => {
      if (done) return;
      done = true;
      if (size === 0) {
        resolve(undefined);
        return;
      }
      const text = (chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks)).toString(
        'utf8',
      );
      try {
        resolve(JSON.parse(text));
      } catch (err) {
        const message = `malformed JSON: ${describeThrown(err)}`;
        reject(
          new RequestValidationError(`invalid request: body: ${message}`, {
            issues: [{ path: 'body', message }],
          }),
        );
      }
    });
  });
}

function tooLarge(limit: number) {
  return new PayloadTooLargeError(`the request body is larger than ${limit} bytes`, { limit });
}
