/**
 * One error shape for every HTTP error Trellis writes: RFC 9457 `application/problem+json`
 * with `type`, `title`, `status`, `detail`, plus `code` (the stable `TRELLIS_...` code),
 * `requestId` and, for validation failures, `errors: [{ path, message }]`. The served contracts,
 * the adapters, the gateway and the admin API all write it through {@link writeProblem}; the
 * typed client reads it back with {@link parseProblem} (`HttpError.problem`).
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { problemOf, writeProblem, ShutdownError } from '@trellis/core';
 * createServer((req, res) => {
 *   writeProblem(res, problemOf(new ShutdownError('draining'), { requestId: 'r-1' }));
 * });
 * ```
 */
import { type ServerResponse, STATUS_CODES } from 'node:http';
import type { ConfigIssue } from '../errors.js';
import { isTrellisError } from '../TrellisError.js';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  /** A URI naming the kind of problem: `urn:trellis:error:<code>` for Trellis codes. */
  type: string;
  /** The status's reason phrase, e.g. `Service Unavailable`. */
  title: string;
  status: number;
  /** What went wrong, for a person. Never a stack trace or a local path. */
  detail?: string;
  /** The stable Trellis error code, e.g. `TRELLIS_SHED` (docs/errors.md). */
  code: string;
  /** The request's `x-request-id`, when known. */
  requestId?: string;
  /** For validation failures: each offending field. */
  errors?: ConfigIssue[];
  /** Extension members (RFC 9457 §3.2). */
  [extension: string]: unknown;
}

export interface ProblemInit {
  status: number;
  code: string;
  detail?: string;
  requestId?: string;
  errors?: readonly ConfigIssue[];
  /** Extension members; `type`, `title`, `status` and `code` cannot be overridden here. */
  extensions?: Record<string, unknown>;
}

/** The `type` URI of a Trellis error code. */
export function problemType(code: string): string {
  return `urn:trellis:error:${code}`;
}

/** Builds a problem object. */
export function problem(init: ProblemInit): Problem {
  const out: Problem = {
    ...init.extensions,
    type: problemType(init.code),
    title: STATUS_CODES[init.status] ?? 'Error',
    status: init.status,
    code: init.code,
  };
  if (init.detail !== undefined) out.detail = init.detail;
  if (init.requestId !== undefined) out.requestId = init.requestId;
  if (init.errors !== undefined) out.errors = init.errors.map((e) => ({ ...e }));
  return out;
}

export interface ProblemOfOptions {
  requestId?: string;
  /** Overrides the status the error's class declares (default 500 for classes without one). */
  status?: number;
  /** Overrides the detail (default: the Trellis error's message; a generic one for others). */
  detail?: string;
}

/**
 * The problem for a thrown value. A Trellis error gives its `code`, its class's status and its
 * message (and `issues` as `errors`); anything else is `500 TRELLIS_INTERNAL` with a generic
 * detail, so nothing internal reaches a client. Log the error itself next to it.
 */
export function problemOf(error: unknown, options: ProblemOfOptions = {}): Problem {
  if (isTrellisError(error)) {
    const declared = (error.constructor as { status?: number }).status;
    const status = options.status ?? declared ?? 500;
    const issues = (error as { issues?: unknown }).issues;
    return problem({
      status,
      code: error.code,
      detail:
        options.detail ??
        (status >= 500 && declared === undefined ? 'internal error' : error.message),
      requestId: options.requestId,
      errors: Array.isArray(issues) ? (issues as ConfigIssue[]) : undefined,
    });
  }
  return problem({
    status: options.status ?? 500,
    code: 'TRELLIS_INTERNAL',
    detail: options.detail ?? 'internal error',
    requestId: options.requestId,
  });
}

/**
 * Writes `problem` as the whole answer: status, `content-type: application/problem+json`,
 * `content-length`, `cache-control: no-store`, plus `headers`. A HEAD request gets the headers
 * only. When headers were already sent it cannot answer any more, so it ends the response
 * abruptly (the client sees a truncated answer, never a second one).
 */
export function writeProblem(
  res: ServerResponse,
  value: Problem,
  headers?: Record<string, string | number | readonly string[]>,
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body = JSON.stringify(value);
  res.statusCode = value.status;
  if (headers) for (const [name, v] of Object.entries(headers)) res.setHeader(name, v);
  res.setHeader('content-type', PROBLEM_CONTENT_TYPE);
  res.setHeader('content-length', Buffer.byteLength(body));
  res.setHeader('cache-control', 'no-store');
  res.end(res.req?.method === 'HEAD' ? undefined : body);
}

/**
 * Reads a problem body: returns it when `contentType` is `application/problem+json` (or JSON)
 * and the body is an object with a numeric `status` or a string `code`; otherwise undefined.
 * `body` may be the raw text or an already parsed value.
 */
export function parseProblem(contentType: string | undefined, body: unknown): Problem | undefined {
  if (contentType === undefined) return undefined;
  const type = contentType.split(';', 1)[0]?.trim().toLowerCase();
  if (type !== PROBLEM_CONTENT_TYPE && type !== 'application/json') return undefined;
  let value = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return undefined;
    }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const v = value as Record<string, unknown>;
  if (typeof v.code !== 'string' && typeof v.status !== 'number') return undefined;
  if (type === 'application/json' && typeof v.type !== 'string') return undefined;
  return v as Problem;
}
