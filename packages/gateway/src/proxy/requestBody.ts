/**
 * What the proxy sends upstream as the request body: nothing, the client's stream (with the
 * route's size limit enforced while it streams), or, when the host app's body parser already
 * consumed the stream, the parsed body re-serialised (JSON, form, text, Buffer). Anything else
 * is answered with 400 instead of hanging.
 */
import type { IncomingMessage } from 'node:http';
import { Transform, type TransformCallback } from 'node:stream';
import type { Clock, ClockTimer, TrellisError } from '@trellis/core';
import { hasBody, type RequestContext } from '../chain/RequestContext.js';
import { BodyConsumedError, BodyTimeoutError, BodyTooLargeError } from '../errors.js';

/** The body to dispatch. */
export interface UpstreamBody {
  readonly body: null | Buffer | IncomingMessage | Transform;
  /** Set when the gateway knows the length (re-serialised bodies). */
  readonly length: number | undefined;
  readonly reserialised: boolean;
  /** Detaches what the body installed. */
  release(): void;
}

const noop = (): void => {};
const NONE: UpstreamBody = { body: null, length: undefined, reserialised: false, release: noop };

/**
 * Counts the bytes of a streamed body and fails once they pass the limit, or when the client
 * stays silent longer than `idleMs` between two chunks (one timer per body, re-armed lazily).
 */
class BodyLimit extends Transform {
  readonly #ctx: RequestContext;
  readonly #limit: number;
  readonly #idleMs: number;
  readonly #clock: Clock;
  #seen = 0;
  #last: number;
  #timer: ClockTimer | undefined;
  constructor(ctx: RequestContext, limit: number, idleMs: number, clock: Clock) {
    super();
    this.#ctx = ctx;
    this.#limit = limit;
    this.#idleMs = idleMs;
    this.#clock = clock;
    this.#last = clock.now();
    this.#arm(idleMs);
  }
  #arm(ms: number): void {
    this.#timer = this.#clock.setTimeout(this.#check, ms);
    (this.#timer as { unref?: () => void }).unref?.();
  }
  readonly #check = (): void => {
    this.#timer = undefined;
    if (this.destroyed || this.writableEnded) return;
    const idle = this.#clock.now() - this.#last;
    if (idle < this.#idleMs) {
      this.#arm(this.#idleMs - idle);
      return;
    }
    const err = new BodyTimeoutError(`request body stalled for ${this.#idleMs} ms`);
    this.#ctx.bodyTooLarge = err;
    this.destroy(err);
  };
  stop(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.#seen += chunk.length;
    this.#last = this.#clock.now();
    if (this.#seen > this.#limit) {
      const err = new BodyTooLargeError(`request body over ${this.#limit} bytes`, {
        limitBytes: this.#limit,
      });
      this.#ctx.bodyTooLarge = err;
      this.stop();
      cb(err);
      return;
    }
    cb(null, chunk);
  }
  override _flush(cb: TransformCallback): void {
    this.stop();
    cb();
  }
  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.stop();
    cb(err);
  }
}

/** Chooses the upstream body for an exchange, or the error to answer with. */
export function requestBody(
  ex: RequestContext,
  maxBytes: number,
  idleMs: number,
  clock: Clock,
): UpstreamBody | TrellisError {
  const req = ex.req;
  if (req.readableDidRead || req.readableEnded) {
    const out = reserialise(ex);
    if (!(out instanceof Error) && out.length !== undefined && out.length > maxBytes) {
      return new BodyTooLargeError(`request body over ${maxBytes} bytes`, { limitBytes: maxBytes });
    }
    return out;
  }
  if (!hasBody(req)) return NONE;
  const cl = req.headers['content-length'];
  if (cl !== undefined) {
    if (Number(cl) > maxBytes) {
      return new BodyTooLargeError(`request body of ${cl} bytes is over ${maxBytes}`, {
        limitBytes: maxBytes,
      });
    }
  }
  const limiter = new BodyLimit(ex, maxBytes, idleMs, clock);
  const onError = (err: Error): void => {
    limiter.destroy(err);
  };
  req.on('error', onError);
  req.pipe(limiter);
  return {
    body: limiter,
    length: undefined,
    reserialised: false,
    release: () => {
      limiter.stop();
      req.off('error', onError);
      req.unpipe(limiter);
    },
  };
}

function reserialise(ex: RequestContext): UpstreamBody | TrellisError {
  const req = ex.req;
  const parsed = (req as IncomingMessage & { body?: unknown }).body;
  const type = String(req.headers['content-type'] ?? '').toLowerCase();
  let buf: Buffer | undefined;
  if (Buffer.isBuffer(parsed)) buf = parsed;
  else if (typeof parsed === 'string') buf = Buffer.from(parsed, 'utf8');
  else if (parsed !== undefined && parsed !== null && typeof parsed === 'object') {
    if (!hasBody(req) && Object.keys(parsed).length === 0) return NONE;
    if (type.includes('json')) buf = Buffer.from(JSON.stringify(parsed), 'utf8');
    else if (type.startsWith('application/x-www-form-urlencoded')) {
      const form = new URLSearchParams();
      for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) {
        if (Array.isArray(v)) for (const item of v) form.append(k, String(item));
        else if (typeof v === 'object' && v !== null) {
          return new BodyConsumedError('cannot re-serialise a nested form body');
        } else form.append(k, String(v));
      }
      buf = Buffer.from(form.toString(), 'utf8');
    }
  } else if (!hasBody(req)) return NONE;
  if (buf === undefined) {
    return new BodyConsumedError(
      'the request body was consumed by a body parser before the gateway and cannot be re-serialised',
    );
  }
  return { body: buf, length: buf.length, reserialised: true, release: noop };
}
