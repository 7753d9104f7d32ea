import type { IncomingMessage, ServerResponse } from 'node:http';
import { InternalError } from '../errors.js';
import type { Logger } from '../Logger.js';
import { problemOf, writeProblem } from '../problem/Problem.js';
import {
  createIdempotency,
  type Idempotency,
  type IdempotencyClaim,
  type IdempotencyOptions,
  type IdempotencyReply,
} from './createIdempotency.js';
import { IDEMPOTENCY_KEY_HEADER } from './parseIdempotencyKey.js';

/** The request as the middleware reads it (an Express `Request` fits). */
export interface IdempotencyExpressRequest extends IncomingMessage {
  /** Set by a body parser (`express.json()`, ...), which must run before this middleware. */
  body?: unknown;
  originalUrl?: string;
}

export type IdempotencyExpressMiddleware = ((
  req: IdempotencyExpressRequest,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void) & {
  /** The engine, shared with `serve(..., { idempotency })`. */
  readonly engine: Idempotency;
};

/**
 * `idempotency()` for Express 4 and 5: mount it after the body parser, on the routes (or app)
 * it protects. See {@link IdempotencyOptions}.
 */
export function expressIdempotency(
  options: IdempotencyOptions | Idempotency = {},
): IdempotencyExpressMiddleware {
  const engine = isEngine(options) ? options : createIdempotency(options);
  const logger: Logger | undefined = isEngine(options) ? undefined : options.logger;
  const { maxBodyBytes, methods, required } = engine.options;
  const middleware = (
    req: IdempotencyExpressRequest,
    res: ServerResponse,
    next: (err?: unknown) => void,
  ) => {
    // Fast path: nothing to do for a request without a key unless keys are required.
    if (
      !methods.has(req.method ?? '') ||
      (req.headers[IDEMPOTENCY_KEY_HEADER] === undefined && !required)
    ) {
      next();
      return;
    }
    if (req.body === undefined && hasBody(req)) {
      logger?.error(
        { method: req.method, url: req.originalUrl ?? req.url },
        'idempotency(): the request has a body but req.body is unset; mount a body parser (express.json()) before idempotency()',
      );
      writeProblem(res, problemOf(new InternalError('idempotency: no parsed body')));
      return;
    }
    engine.begin({ req, target: req.originalUrl ?? req.url ?? '/', body: req.body }).then((b) => {
      if (b.kind === 'pass') next();
      else if (b.kind === 'reply') sendReply(res, b.reply);
      else capture(res, b.claim, maxBodyBytes, next);
    }, next);
  };
  return Object.assign(middleware, { engine });
}

function isEngine(v: IdempotencyOptions | Idempotency): v is Idempotency {
  return typeof (v as Idempotency).begin === 'function';
}

function hasBody(req: IncomingMessage): boolean {
  const len = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (len !== undefined && len !== '0');
}

/** Writes a problem or a replayed answer. */
export function sendReply(res: ServerResponse, reply: IdempotencyReply): void {
  if (reply.problem !== undefined) {
    writeProblem(res, reply.problem, reply.headers);
    return;
  }
  res.statusCode = reply.status;
  for (const [k, v] of Object.entries(reply.headers)) res.setHeader(k, v);
  const body = reply.body ?? new Uint8Array(0);
  res.setHeader('content-length', body.byteLength);
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

type Chunk = string | Uint8Array;

/** Copies what the handler writes; records it before the response ends. */
function capture(res: ServerResponse, claim: IdempotencyClaim, max: number, next: () => void) {
  const chunks: Buffer[] = [];
  let size = 0;
  let over = false;
  const collect = (chunk: unknown, encoding: unknown) => {
    if (over || chunk === undefined || chunk === null || typeof chunk === 'function') return;
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8')
        : Buffer.from(
            (chunk as Uint8Array).buffer,
            (chunk as Uint8Array).byteOffset,
            (chunk as Uint8Array).byteLength,
          );
    size += buf.length;
    if (size > max) {
      over = true;
      chunks.length = 0;
      return;
    }
    chunks.push(Buffer.from(buf));
  };
  const write = res.write;
  const end = res.end;
  res.write = function (this: ServerResponse, chunk: Chunk, ...rest: unknown[]) {
    collect(chunk, rest[0]);
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest);
  } as typeof res.write;
  res.end = function (this: ServerResponse, ...args: unknown[]) {
    res.write = write;
    res.end = end;
    collect(args[0], args[1]);
    claim
      .finish({
        status: res.statusCode,
        headers: res.getHeaders(),
        body: over ? undefined : Buffer.concat(chunks),
      })
      .finally(() => (end as (...a: unknown[]) => ServerResponse).apply(res, args));
    return res;
  } as typeof res.end;
  res.once('close', () => {
    if (!claim.settled) claim.abandon();
  });
  next();
}
