/** Turns a finished exchange into what the call resolves with: parsed, validated, or an error. */
import type { z } from 'zod';
import { ResponseValidationError } from '../errors.js';
import { describeThrown } from '../faults/describeThrown.js';
import { toIssues } from '../options.js';
import type { ClientExchange } from './ClientExchange.js';
import { httpError } from './clientErrors.js';
import type { CompiledEndpoint } from './compileEndpoint.js';
import { parseBody, readBody } from './responseBody.js';

/**
 * Reads response bodies for one client: parses them, validates them against the endpoint's
 * schema (all, none, or an exact share: `validateResponse: { sampleRate }`), and turns statuses
 * the endpoint does not declare into `HttpError`.
 */
export class ResponseReader {
  readonly #validateAll: boolean;
  readonly #sampleRate: number;
  #sampleCredit = 0;

  constructor(validateResponse: boolean | { readonly sampleRate: number }) {
    const v = validateResponse;
    this.#validateAll = v === true || (typeof v === 'object' && v.sampleRate >= 1);
    this.#sampleRate = typeof v === 'object' ? v.sampleRate : v ? 1 : 0;
  }

  /** The call's result for a finished exchange, or the right error. */
  interpret(ep: CompiledEndpoint, exchange: ClientExchange, resendable: boolean): unknown {
    const status = exchange.statusCode;
    const ok = status >= 200 && status < 300;
    if (ep.single !== undefined) {
      if (!ok) throw httpError(ep, exchange, resendable);
      return this.#validate(ep, ep.single, status, exchange);
    }
    const s = (ep.byStatus as ReadonlyMap<number, z.ZodType>).get(status);
    if (s === undefined) {
      if (!ok) throw httpError(ep, exchange, resendable);
      const message = `status ${status} is not declared in the endpoint's responses`;
      throw new ResponseValidationError(`${ep.name}: invalid response: ${message}`, {
        status,
        issues: [{ path: '(status)', message }],
        body: readBody(exchange, ep.method),
      });
    }
    return {
      status,
      body: this.#validate(ep, s, status, exchange),
      headers: exchange.headers,
    };
  }

  #validate(ep: CompiledEndpoint, schema: z.ZodType, status: number, exchange: ClientExchange) {
    let body: unknown;
    try {
      body = parseBody(exchange, ep.method);
    } catch (err) {
      const message = `body is not valid JSON: ${(err as Error).message}`;
      throw new ResponseValidationError(`${ep.name}: invalid response: ${message}`, {
        status,
        issues: [{ path: '(root)', message }],
        body: exchange.body()?.toString('utf8'),
        cause: err,
      });
    }
    if (!this.#shouldValidate()) return body;
    let r: ReturnType<z.ZodType['safeParse']>;
    try {
      r = schema.safeParse(body);
    } catch (err) {
      // A transform or refinement that throws is a local failure to read this answer: never a
      // raw error a retry policy would take for a transient one (and re-send a POST for).
      const message = `response schema threw: ${describeThrown(err)}`;
      throw new ResponseValidationError(`${ep.name}: invalid response (${status}): ${message}`, {
        status,
        issues: [{ path: '(root)', message }],
        body,
        cause: err,
      });
    }
    if (r.success) return r.data;
    const issues = toIssues(r.error);
    const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    throw new ResponseValidationError(`${ep.name}: invalid response (${status}): ${detail}`, {
      status,
      issues,
      body,
      cause: r.error,
    });
  }

  /** Deterministic sampling: exactly `sampleRate` of responses, spread evenly, no RNG. */
  #shouldValidate(): boolean {
    if (this.#validateAll) return true;
    if (this.#sampleRate === 0) return false;
    this.#sampleCredit += this.#sampleRate;
    if (this.#sampleCredit < 1) return false;
    this.#sampleCredit -= 1;
    return true;
  }
}
