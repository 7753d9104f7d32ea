import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { type Clock, type ClockTimer, systemClock } from '../Clock.js';
import { getRequestContext } from '../context.js';
import {
  IdempotencyInProgressError,
  IdempotencyKeyInvalidError,
  IdempotencyKeyRequiredError,
  IdempotencyMismatchError,
  IdempotencyStoreError,
} from '../errors.js';
import { describeThrown } from '../faults/describeThrown.js';
import { type Logger, silentLogger } from '../Logger.js';
import { parseOptions } from '../options.js';
import { type Problem, problemOf } from '../problem/Problem.js';
import { durationMs } from '../time/duration.js';
import { fingerprint } from './fingerprint.js';
import type { IdempotencyStore, RecordedAnswer, RecordId } from './IdempotencyStore.js';
import { memoryStore } from './memoryStore.js';
import {
  DEFAULT_MAX_KEY_LENGTH,
  IDEMPOTENCY_KEY_HEADER,
  IDEMPOTENT_REPLAYED_HEADER,
  parseIdempotencyKey,
} from './parseIdempotencyKey.js';
import { isTransactionalStore, type Queryable } from './transactional.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export interface IdempotencyOptions {
  /** Where keys and answers live. Default: a {@link memoryStore} (one process only). */
  store?: IdempotencyStore;
  /** How long a recorded answer is replayed. Default 24 h. */
  ttlMs?: number;
  /**
   * How long a claim holds without renewal (stores shared between processes let it run out when
   * the holder crashed). Renewed every third of it while the handler runs. Default 30 s.
   */
  leaseMs?: number;
  /** Requests of these methods without a key are refused with 400. Default false. */
  required?: boolean;
  /** Methods the middleware applies to; others pass through. Default `['POST', 'PATCH']`. */
  methods?: readonly string[];
  /**
   * The caller's scope, so one caller cannot replay another's answer with the same key. E.g.
   * `(req) => req.headers['x-user-id'] as string` when a gateway you trust verified and
   * forwarded the identity. Return undefined for "no scope". Default: one scope for everyone.
   */
  scope?: (req: IncomingMessage) => string | undefined;
  /** Response headers recorded and replayed (lower case). Default content-type, location, etag, content-location, last-modified. */
  recordHeaders?: readonly string[];
  /** Longest key accepted. Default 255. */
  maxKeyLength?: number;
  /** Largest answer body recorded; a larger answer is released (not replayed) and logged. Default 1 MiB. */
  maxBodyBytes?: number;
  /** `Retry-After` of the 409 for a request still running. Default 1 000 ms. */
  retryAfterMs?: number;
  /**
   * When the store fails or does not answer: `'closed'` (default) refuses the request with 503
   * and `Retry-After` (no duplicate can slip through); `'open'` runs it without protection and
   * logs a warning (availability over exactly-once).
   */
  onStoreError?: 'closed' | 'open';
  logger?: Logger;
  clock?: Clock;
}

const schema = z.strictObject({
  store: z
    .custom<IdempotencyStore>(
      (v) =>
        typeof v === 'object' &&
        v !== null &&
        typeof (v as IdempotencyStore).claim === 'function' &&
        typeof (v as IdempotencyStore).complete === 'function',
      'must be an IdempotencyStore (claim, renew, complete, release)',
    )
    .optional(),
  ttlMs: durationMs({ positive: true }).default(DAY_MS),
  leaseMs: durationMs({ min: 100 }).default(30_000),
  required: z.boolean().default(false),
  methods: z
    .array(z.string().regex(/^[A-Z]+$/, 'must be an upper-case method name'))
    .default(['POST', 'PATCH']),
  scope: z
    .custom<(req: IncomingMessage) => string | undefined>(
      (v) => typeof v === 'function',
      'must be a function',
    )
    .optional(),
  recordHeaders: z
    .array(z.string().regex(/^[!#$%&'*+\-.^_`|~0-9a-z]+$/, 'must be a lower-case header name'))
    .default(['content-type', 'location', 'etag', 'content-location', 'last-modified']),
  maxKeyLength: z.number().int().min(1).max(8192).default(DEFAULT_MAX_KEY_LENGTH),
  maxBodyBytes: z
    .number()
    .int()
    .min(0)
    .default(1024 * 1024),
  retryAfterMs: durationMs({ min: 1 }).default(1_000),
  onStoreError: z.enum(['closed', 'open']).default('closed'),
  logger: z.custom<Logger>((v) => typeof v === 'object' && v !== null).optional(),
  clock: z
    .custom<Clock>(
      (v) => typeof v === 'object' && v !== null && typeof (v as Clock).now === 'function',
      'must be a Clock',
    )
    .optional(),
});

/** An answer the middleware gives without running the handler: a problem, or a replay. */
export interface IdempotencyReply {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Set for a problem answer (write it with `writeProblem`). */
  readonly problem?: Problem;
  /** Set for a replayed answer: the recorded body. */
  readonly body?: Uint8Array;
}

/** What the handler answered, for {@link IdempotencyClaim.finish}. */
export interface HandlerAnswer {
  readonly status: number;
  /** The response headers (any case; only `recordHeaders` are kept). */
  readonly headers: Readonly<Record<string, string | number | readonly string[] | undefined>>;
  /** The body bytes; undefined when they could not be captured (a stream, or too large). */
  readonly body: Uint8Array | undefined;
}

/** A request that holds its key: run the handler, then `finish` with its answer. */
export interface IdempotencyClaim {
  readonly key: string;
  readonly scope: string;
  readonly fingerprint: string;
  /** True once the answer is recorded (by `finish` or `recordIn`) or the key released. */
  readonly settled: boolean;
  /**
   * Records the handler's answer (status < 500) or releases the key (5xx, or a body that could
   * not be captured), and stops renewing. Never throws; store failures are logged.
   */
  finish(answer: HandlerAnswer): Promise<void>;
  /**
   * Records the answer inside the caller's own transaction (Postgres store only), so the
   * business write and the recorded answer commit together. `finish` then records nothing.
   * `body` is sent as JSON unless it is bytes or a string.
   */
  recordIn(
    tx: Queryable,
    answer: { status: number; body?: unknown; headers?: Record<string, string> },
  ): Promise<void>;
  /** The response closed without an answer: stop renewing, let the lease run out. */
  abandon(): void;
}

export type IdempotencyBegin =
  | { readonly kind: 'pass' }
  | { readonly kind: 'reply'; readonly reply: IdempotencyReply }
  | { readonly kind: 'run'; readonly claim: IdempotencyClaim };

/** The request as the engine needs it. */
export interface IdempotentRequest {
  /** The node request (its method, headers; `scope(req)` reads it). */
  readonly req: IncomingMessage;
  /** Path and query, as the client sent them. */
  readonly target: string;
  /** The parsed or raw body (see {@link fingerprint}). */
  readonly body: unknown;
}

/** The engine behind `idempotency()` for Express, Fastify and `serve(...)`. */
export interface Idempotency {
  /** Decides what to do with a request. Never rejects. */
  begin(request: IdempotentRequest): Promise<IdempotencyBegin>;
  /**
   * The whole cycle around a handler given as a function (for `serve(...)`): a reply when the
   * request is refused or replayed, otherwise `run()`'s answer, recorded.
   */
  execute(
    request: IdempotentRequest,
    run: (claim: IdempotencyClaim | undefined) => Promise<HandlerAnswer>,
  ): Promise<IdempotencyReply | (HandlerAnswer & { readonly problem?: undefined })>;
  /** Stops the lease renewal timer. Running claims are no longer renewed. */
  close(): void;
  readonly options: Readonly<{
    required: boolean;
    maxBodyBytes: number;
    recordHeaders: readonly string[];
    methods: ReadonlySet<string>;
  }>;
}

/** Statuses that say "try again" rather than answer the request: never recorded. */
const TRANSIENT = new Set([408, 409, 425, 429]);

const claimsOf = new WeakMap<IncomingMessage, IdempotencyClaim>();

/**
 * The claim the idempotency middleware holds for this request, if any: handlers use it to
 * record the answer in their own transaction (`idempotencyOf(req)?.recordIn(tx, answer)`).
 */
export function idempotencyOf(req: IncomingMessage): IdempotencyClaim | undefined {
  return claimsOf.get(req);
}

/**
 * Creates the idempotency engine (draft-ietf-httpapi-idempotency-key-header). Adapters:
 * `idempotency()` from `@trellis/core/express` and `@trellis/core/fastify`.
 */
export function createIdempotency(options: IdempotencyOptions = {}): Idempotency {
  const o = parseOptions(schema, options, 'idempotency');
  const store = o.store ?? memoryStore(o.clock ? { clock: o.clock } : {});
  const clock = o.clock ?? systemClock;
  const logger = o.logger ?? silentLogger;
  const methods = new Set(o.methods);
  const recordHeaders = o.recordHeaders;
  const leaseOpts = { leaseMs: o.leaseMs };
  const ttlOpts = { ttlMs: o.ttlMs };
  const retryAfter = String(Math.max(1, Math.ceil(o.retryAfterMs / 1000)));
  const scopeOf = o.scope;

  // One renewal loop for every running claim, only for stores whose leases expire.
  const running = new Set<Claim>();
  let timer: ClockTimer | undefined;
  let closed = false;
  const renewEvery = Math.max(50, Math.floor(o.leaseMs / 3));
  const tick = () => {
    timer = undefined;
    if (closed || running.size === 0) return;
    for (const c of running) {
      store.renew(c.id, c.token, leaseOpts).then(
        (ok) => {
          if (!ok && running.has(c)) {
            running.delete(c);
            logger.warn(
              { key: c.key, scope: c.scope },
              'idempotency: lost the claim on a running request (its lease ran out)',
            );
          }
        },
        (err: unknown) =>
          logger.warn(
            { key: c.key, err: describeThrown(err) },
            'idempotency: lease renewal failed',
          ),
      );
    }
    schedule();
  };
  const schedule = () => {
    if (timer !== undefined || closed || running.size === 0) return;
    timer = clock.setTimeout(tick, renewEvery);
    timer.unref?.();
  };

  const requestIdOf = (req: IncomingMessage) => {
    const id = getRequestContext()?.requestId;
    if (id !== undefined) return id;
    const h = req.headers['x-request-id'];
    return typeof h === 'string' ? h : undefined;
  };
  const problemReply = (
    req: IncomingMessage,
    err: Error,
    headers: Record<string, string> = {},
  ): IdempotencyBegin => ({
    kind: 'reply',
    reply: {
      status: problemOf(err).status,
      headers,
      problem: problemOf(err, { requestId: requestIdOf(req) }),
    },
  });

  class Claim implements IdempotencyClaim {
    settled = false;
    constructor(
      readonly id: RecordId,
      readonly fingerprint: string,
      readonly token: string,
    ) {}
    get key() {
      return this.id.key;
    }
    get scope() {
      return this.id.scope;
    }
    #stop() {
      running.delete(this);
    }
    abandon(): void {
      this.#stop();
    }
    async finish(answer: HandlerAnswer): Promise<void> {
      this.#stop();
      if (this.settled) return;
      this.settled = true;
      try {
        if (answer.status >= 500 || TRANSIENT.has(answer.status)) {
          await store.release(this.id, this.token);
          return;
        }
        if (answer.body === undefined) {
          logger.warn(
            { key: this.key, status: answer.status },
            'idempotency: the answer could not be recorded (streamed or larger than maxBodyBytes); the key is released',
          );
          await store.release(this.id, this.token);
          return;
        }
        const ok = await store.complete(
          this.id,
          this.token,
          toRecorded(answer, recordHeaders),
          ttlOpts,
        );
        if (!ok)
          logger.warn(
            { key: this.key },
            'idempotency: the claim was lost before the answer was recorded',
          );
      } catch (err) {
        logger.error(
          { key: this.key, err: describeThrown(err) },
          'idempotency: recording the answer failed',
        );
      }
    }
    async recordIn(
      tx: Queryable,
      answer: { status: number; body?: unknown; headers?: Record<string, string> },
    ): Promise<void> {
      if (!isTransactionalStore(store)) {
        throw new TypeError(
          'idempotency: recordIn needs a store that writes in a transaction (postgresStore)',
        );
      }
      const { body, type } = encodeBody(answer.body);
      const headers: Record<string, string> = {};
      if (type !== undefined) headers['content-type'] = type;
      for (const [k, v] of Object.entries(answer.headers ?? {})) headers[k.toLowerCase()] = v;
      const ok = await store.completeIn(
        tx,
        this.id,
        this.token,
        { status: answer.status, headers, body },
        ttlOpts,
      );
      if (!ok)
        throw new IdempotencyStoreError(
          'idempotency: the claim on this key was lost (its lease ran out)',
        );
      this.settled = true;
      this.#stop();
    }
  }

  const begin = async ({ req, target, body }: IdempotentRequest): Promise<IdempotencyBegin> => {
    const method = req.method ?? 'GET';
    if (!methods.has(method)) return PASS;
    const raw = req.headers[IDEMPOTENCY_KEY_HEADER];
    if (raw === undefined) {
      if (!o.required) return PASS;
      return problemReply(
        req,
        new IdempotencyKeyRequiredError(
          `${method} ${pathOf(target)} requires an Idempotency-Key header`,
        ),
      );
    }
    const parsed = parseIdempotencyKey(raw, o.maxKeyLength);
    if (!parsed.ok) {
      return problemReply(
        req,
        new IdempotencyKeyInvalidError(`invalid Idempotency-Key header: ${parsed.reason}`, {
          reason: parsed.reason,
        }),
      );
    }
    let scope = '';
    if (scopeOf !== undefined) {
      try {
        scope = scopeOf(req) ?? '';
      } catch (err) {
        logger.error({ err: describeThrown(err) }, 'idempotency: scope(req) threw');
        return problemReply(req, new Error('scope failed'));
      }
    }
    const id: RecordId = { scope, key: parsed.key };
    const fp = fingerprint(method, target, body);
    let result: Awaited<ReturnType<IdempotencyStore['claim']>>;
    try {
      result = await store.claim(id, fp, leaseOpts);
    } catch (err) {
      if (o.onStoreError === 'open') {
        logger.warn(
          { key: id.key, err: describeThrown(err) },
          'idempotency: store failed; running the request unprotected (onStoreError: open)',
        );
        return PASS;
      }
      logger.error(
        { key: id.key, err: describeThrown(err) },
        'idempotency: store failed; refusing the request (onStoreError: closed)',
      );
      const e =
        err instanceof IdempotencyStoreError
          ? err
          : new IdempotencyStoreError('the idempotency store is unavailable', { cause: err });
      return problemReply(req, e, { 'retry-after': retryAfter });
    }
    if (result.state === 'claimed') {
      const claim = new Claim(id, fp, result.token);
      claimsOf.set(req, claim);
      if (store.leases) {
        running.add(claim);
        schedule();
      }
      return { kind: 'run', claim };
    }
    if (result.fingerprint !== fp) {
      return problemReply(
        req,
        new IdempotencyMismatchError(
          'this Idempotency-Key was used for a different request (method, path or body)',
        ),
      );
    }
    if (result.state === 'in-progress') {
      return problemReply(
        req,
        new IdempotencyInProgressError(
          'a request with this Idempotency-Key is still running; retry after Retry-After',
          {
            retryAfterMs: o.retryAfterMs,
          },
        ),
        { 'retry-after': retryAfter },
      );
    }
    const a = result.answer;
    return {
      kind: 'reply',
      reply: {
        status: a.status,
        headers: { ...a.headers, [IDEMPOTENT_REPLAYED_HEADER]: 'true' },
        body: a.body,
      },
    };
  };

  return {
    options: { required: o.required, maxBodyBytes: o.maxBodyBytes, recordHeaders, methods },
    begin,
    async execute(request, run) {
      const b = await begin(request);
      if (b.kind === 'reply') return b.reply;
      const claim = b.kind === 'run' ? b.claim : undefined;
      let answer: HandlerAnswer;
      try {
        answer = await run(claim);
      } catch (err) {
        await claim?.finish({ status: 500, headers: {}, body: undefined });
        throw err;
      }
      await claim?.finish(answer);
      return answer;
    },
    close() {
      closed = true;
      if (timer !== undefined) clock.clearTimeout(timer);
      timer = undefined;
      running.clear();
    },
  };
}

const PASS: IdempotencyBegin = { kind: 'pass' };

function pathOf(target: string): string {
  const q = target.indexOf('?');
  return q === -1 ? target : target.slice(0, q);
}

function toRecorded(answer: HandlerAnswer, names: readonly string[]): RecordedAnswer {
  const headers: Record<string, string> = {};
  const src = answer.headers;
  for (const name of names) {
    let v = src[name];
    if (v === undefined) {
      // Headers given with another case.
      for (const k in src) if (k.toLowerCase() === name) v = src[k];
    }
    if (v === undefined) continue;
    headers[name] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  return { status: answer.status, headers, body: answer.body as Uint8Array };
}

function encodeBody(body: unknown): { body: Uint8Array; type: string | undefined } {
  if (body === undefined) return { body: new Uint8Array(0), type: undefined };
  if (body instanceof Uint8Array) return { body, type: undefined };
  if (typeof body === 'string') return { body: Buffer.from(body), type: undefined };
  return { body: Buffer.from(JSON.stringify(body)), type: 'application/json; charset=utf-8' };
}
