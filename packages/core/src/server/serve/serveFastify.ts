import type {
  FastifyError,
  FastifyInstance,
  FastifyPluginCallback,
  FastifyReply,
  FastifyRequest,
  HTTPMethods,
} from 'fastify';
import type { z } from 'zod';
import type { EndpointMap } from '../../contract/endpoint.js';
import {
  type ConfigIssue,
  MethodNotAllowedError,
  PayloadTooLargeError,
  RequestValidationError,
  UnsupportedMediaTypeError,
} from '../../errors.js';
import { describeThrown } from '../../faults/describeThrown.js';
import { PROBLEM_CONTENT_TYPE, type Problem, problem, problemOf } from '../../problem/Problem.js';
import { isTrellisError } from '../../TrellisError.js';
import {
  allowByPath,
  Contract,
  type HandlerAnswer,
  prefixIssues,
  type ServedEndpoint,
} from './compileContract.js';
import { HandlerArgs } from './HandlerArgs.js';
import type { Handlers } from './Handlers.js';
import { normalizeQuery } from './requestParts.js';
import type { ServeOptions } from './serveOptions.js';
import { writeStream } from './writeStream.js';

const ALL_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const PART: Record<string, string> = {
  body: 'body',
  querystring: 'query',
  params: 'params',
  headers: 'headers',
};

/** Thrown by the response serializer when an answer breaks the contract (already logged). */
class ContractViolation extends Error {
  constructor(readonly issues: ConfigIssue[]) {
    super('the answer breaks the contract');
  }
}

function sendProblem(reply: FastifyReply, p: Problem, headers?: Record<string, string>): void {
  reply
    .code(p.status)
    .header('content-type', PROBLEM_CONTENT_TYPE)
    .header('cache-control', 'no-store');
  if (headers) reply.headers(headers);
  reply.send(Buffer.from(JSON.stringify(p)));
}

/**
 * Serves a contract on Fastify 5 through Fastify's own machinery: each endpoint is a route whose
 * `schema` holds the zod schemas, with a route `validatorCompiler` (zod `safeParse`, the parsed
 * output replaces the part) and `serializerCompiler` (validates the answer, then
 * `JSON.stringify`), Fastify's body parser with `bodyLimit`, and a route `errorHandler` that
 * answers every failure as problem+json. Undeclared methods on declared paths answer 405 with
 * `Allow`. Register it with a `prefix` to mount it under a path.
 *
 * Fastify validates params, body, query and headers in that order and stops at the first part
 * that fails, so one 400 names every bad field of that part.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { defineEndpoints } from '@trellis/core';
 * import { serve } from '@trellis/core/fastify';
 * import { z } from 'zod';
 *
 * const api = defineEndpoints({
 *   getItem: { method: 'GET', path: '/items/:id', response: z.object({ id: z.string() }) },
 * });
 * const app = Fastify();
 * await app.register(serve(api, { getItem: async ({ params }) => ({ status: 200, body: { id: params.id } }) }));
 * ```
 */
export function serve<const M extends EndpointMap>(
  endpoints: M,
  handlers: Handlers<M, FastifyRequest>,
  options?: ServeOptions,
): FastifyPluginCallback {
  const contract = new Contract('serve (fastify)', endpoints, handlers, options);
  const plugin: FastifyPluginCallback = (fastify, _opts, done) => {
    try {
      register(fastify, contract);
    } catch (err) {
      done(err as Error);
      return;
    }
    done();
  };
  return plugin;
}

function register(fastify: FastifyInstance, contract: Contract): void {
  const logger = contract.logger;
  const bodyLimit = contract.options.bodyLimit;

  const errorHandlerFor = (ep: ServedEndpoint | undefined) =>
    function contractErrorHandler(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
      const requestId = typeof request.id === 'string' ? request.id : undefined;
      sendProblem(reply, problemFor(err, ep, requestId, request.headers['content-type']));
    };

  const problemFor = (
    err: FastifyError,
    ep: ServedEndpoint | undefined,
    requestId: string | undefined,
    contentType: string | undefined,
  ): Problem => {
    if (err instanceof ContractViolation) {
      return problem({
        status: 500,
        code: 'TRELLIS_RESPONSE_INVALID',
        detail: 'internal error',
        requestId,
      });
    }
    if (isTrellisError(err)) {
      const p = problemOf(err, { requestId });
      if (p.status >= 500) logFailure(ep, err);
      return p;
    }
    switch (err.code) {
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH': {
        const message =
          err.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
            ? `malformed JSON: ${err.message}`
            : err.message;
        return problemOf(
          new RequestValidationError(`invalid request: body: ${message}`, {
            issues: [{ path: 'body', message }],
          }),
          { requestId },
        );
      }
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return problemOf(
          new PayloadTooLargeError(`the request body is larger than ${bodyLimit} bytes`, {
            limit: bodyLimit,
          }),
          { requestId },
        );
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return problemOf(unsupportedMediaType(contentType), { requestId });
    }
    const status = err.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // Fastify's own client errors (bad URL, ...): its message names what is wrong.
      return problem({ status, code: RequestValidationError.code, detail: err.message, requestId });
    }
    logFailure(ep, err);
    return problemOf(err, { requestId });
  };

  const logFailure = (ep: ServedEndpoint | undefined, err: unknown) => {
    logger.error(
      { endpoint: ep?.name, err: describeThrown(err) },
      `serve: ${ep?.name ?? 'contract'} failed: ${describeThrown(err)}`,
    );
  };

  if (contract.options.openapi !== undefined) {
    fastify.get(contract.options.openapi.path, (_request, reply) => {
      reply
        .header('content-type', 'application/json; charset=utf-8')
        .send(Buffer.from(contract.openApiText()));
    });
  }

  // A body that is not JSON is a 415 where the endpoint takes a body. Fastify itself answers a
  // media type it has no parser for with FST_ERR_CTP_INVALID_MEDIA_TYPE (415, mapped by the error
  // handler), so only its other default parser, text/plain, is replaced, in this plugin's own
  // context, by one that refuses such a body where a body is declared (and reads it, unused, as
  // before where none is). No hook runs on the JSON path.
  fastify.removeContentTypeParser('text/plain');
  fastify.addContentTypeParser('text/plain', { parseAs: 'string' }, (request, text, done) => {
    if (request.routeOptions.schema?.body !== undefined) {
      done(unsupportedMediaType(request.headers['content-type']), undefined);
      return;
    }
    done(null, text);
  });

  for (const ep of contract.endpoints) {
    const validatorCompiler = ({ httpPart }: { httpPart?: string }) => {
      const part = PART[httpPart ?? ''] ?? httpPart ?? 'body';
      return partValidator(ep, part);
    };
    const serializerCompiler = ({ schema }: { schema: unknown }) => {
      const s = schema as z.ZodType;
      return (data: unknown) => {
        const issues = contract.checkBody(ep, s, data);
        if (issues !== undefined) throw new ContractViolation(issues);
        return JSON.stringify(data);
      };
    };
    const schema: Record<string, unknown> = {};
    if (ep.params !== undefined) schema.params = ep.params;
    if (ep.query !== undefined) schema.querystring = ep.query;
    if (ep.body !== undefined) schema.body = ep.body;
    if (ep.headers !== undefined) schema.headers = ep.headers;
    if (ep.single !== undefined) schema.response = { '2xx': ep.single };
    else if (ep.byStatus !== undefined) schema.response = Object.fromEntries(ep.byStatus);

    fastify.route({
      method: ep.method,
      url: ep.path,
      schema,
      validatorCompiler,
      serializerCompiler,
      errorHandler: errorHandlerFor(ep),
      bodyLimit,
      handler(request, reply) {
        const result = ep.handler(
          new HandlerArgs(
            request.params,
            ep.query === undefined ? undefined : request.query,
            ep.body === undefined ? undefined : request.body,
            request.headers,
            request,
            reply.raw,
          ),
        );
        if (result instanceof Promise) {
          return result.then((a: unknown) => answerFastify(contract, ep, reply, a));
        }
        answerFastify(contract, ep, reply, result);
        return undefined;
      },
    });
  }

  // 405 with Allow for the methods a declared path does not declare.
  const declared = new Map<string, { path: string; allow: string[] }>();
  const allow = allowByPath(contract.endpoints);
  for (const ep of contract.endpoints) {
    const key = ep.path.replace(/:[^/]+/g, ':');
    if (!declared.has(key))
      declared.set(key, { path: ep.path, allow: [...new Set(allow.get(key))] });
  }
  for (const [key, { path, allow: methods }] of declared) {
    const others = ALL_METHODS.filter((m) => !methods.includes(m)) as HTTPMethods[];
    if (others.length === 0) continue;
    const header = methods.join(', ');
    fastify.route({
      method: others,
      url: path,
      exposeHeadRoute: false,
      handler(request, reply) {
        const err = new MethodNotAllowedError(`${request.method} is not allowed on ${key}`, {
          allow: methods,
        });
        sendProblem(
          reply,
          problemOf(err, { requestId: typeof request.id === 'string' ? request.id : undefined }),
          {
            allow: header,
          },
        );
      },
    });
  }
}

type PartResult = { value: unknown } | { error: Error };

/**
 * The validator of one part of one endpoint (Fastify's `validatorCompiler`): the part's schema's
 * `safeParse`, whose output replaces the part, or a `RequestValidationError` naming each field.
 * Fastify reads a synchronous validator's `{ value }` at once, so each validator hands back the
 * same result object every time instead of allocating one per request.
 */
function partValidator(ep: ServedEndpoint, part: string): (data: unknown) => PartResult {
  const schema = (
    part === 'params'
      ? ep.params
      : part === 'query'
        ? ep.query
        : part === 'body'
          ? ep.body
          : ep.headers
  ) as z.ZodType;
  const ok = { value: undefined as unknown };
  const refuse = (issues: ConfigIssue[]): PartResult => {
    const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
    return { error: new RequestValidationError(`invalid request: ${detail}`, { issues }) };
  };
  if (part === 'query') {
    return (data: unknown): PartResult => {
      let value = data;
      let issues: ConfigIssue[] | undefined;
      if (value !== null && typeof value === 'object' && queryNeedsNormalizing(ep, value)) {
        issues = [];
        value = normalizeQuery(ep, { ...(value as Record<string, unknown>) }, issues);
      }
      const r = schema.safeParse(value);
      if (r.success && (issues === undefined || issues.length === 0)) {
        ok.value = r.data;
        return ok;
      }
      issues ??= [];
      if (!r.success) prefixIssues(part, r.error, issues);
      return refuse(issues);
    };
  }
  if (part === 'body') {
    return (data: unknown): PartResult => {
      let r = schema.safeParse(data);
      if (!r.success && data === null) r = schema.safeParse(undefined);
      if (r.success) {
        ok.value = r.data;
        return ok;
      }
      return refuse(prefixIssues(part, r.error));
    };
  }
  return (data: unknown): PartResult => {
    const r = schema.safeParse(data);
    if (r.success) {
      ok.value = r.data;
      return ok;
    }
    return refuse(prefixIssues(part, r.error));
  };
}

/** True when `normalizeQuery` would change something: a repeated key, or an array key. */
function queryNeedsNormalizing(ep: ServedEndpoint, query: object): boolean {
  const arrayKeys = ep.arrayKeys;
  for (const key in query) {
    if (Array.isArray((query as Record<string, unknown>)[key]) || arrayKeys.has(key)) return true;
  }
  return false;
}

/** Sends a handler's answer through the reply (its body through the route's serializer). */
function answerFastify(
  contract: Contract,
  ep: ServedEndpoint,
  reply: FastifyReply,
  a: unknown,
): void {
  if (contract.checkAnswer(ep, a, false) !== undefined) throw new ContractViolation([]);
  const { status, body, headers } = a as HandlerAnswer;
  if (ep.stream !== undefined && status === 200) {
    reply.hijack();
    const merged = { ...(reply.getHeaders() as Record<string, string>), ...headers };
    void writeStream(contract, ep, body as AsyncIterable<unknown>, reply.raw, merged);
    return;
  }
  reply.code(status);
  if (headers !== undefined) reply.headers(headers as Record<string, string>);
  reply.send(body);
}

function unsupportedMediaType(contentType: string | undefined): UnsupportedMediaTypeError {
  return new UnsupportedMediaTypeError(
    `content-type ${contentType ?? '(none)'} is not supported: send application/json`,
  );
}

/**
 * Fastify answers a few malformed requests before any route or plugin sees them (a URL with
 * malformed percent-encoding, a path parameter over `maxParamLength`) with its own JSON body.
 * Pass this as the server's `frameworkErrors` option to answer them as problem+json too.
 *
 * @example
 * ```ts
 * import Fastify from 'fastify';
 * import { problemFrameworkErrors } from '@trellis/core/fastify';
 * const app = Fastify({ frameworkErrors: problemFrameworkErrors });
 * ```
 */
export function problemFrameworkErrors(
  error: FastifyError,
  request: FastifyRequest,
  reply: FastifyReply,
): void {
  const status =
    typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 400;
  const p = problem({
    status,
    code: RequestValidationError.code,
    detail:
      error.code === 'FST_ERR_BAD_URL' ? 'the URL has malformed percent-encoding' : error.message,
    requestId: typeof request.id === 'string' ? request.id : undefined,
  });
  sendProblem(reply, p);
}
