/**
 * The example's error answers: every error a service writes is RFC 9457 problem+json through
 * core's `problemOf`/`writeProblem` (the shape the gateway writes), never Express' HTML page,
 * never a stack trace or a local path, and no `x-powered-by` header.
 *
 * One line per service, after its routes:
 *   Express:  problemErrors(app, options.logger);
 *   Fastify:  fastifyProblemErrors(app, options.logger);
 */
import {
  type Logger,
  type Problem,
  problem,
  problemOf,
  RequestValidationError,
  writeProblem,
} from '@trellis/core';
import { RouteNotFoundError } from '@trellis/gateway';
import type { Express, NextFunction, Request, Response } from 'express';
import type { FastifyInstance } from 'fastify';

/**
 * The problem for an error a framework or a handler threw. Errors about the request itself
 * (malformed JSON, a body over the limit, an unsupported charset: body-parser's and Fastify's
 * 4xx errors) name what was wrong; anything else is a generic 500 (logged, never shown).
 */
export function problemForError(err: unknown, requestId: string | undefined): Problem {
  const status = requestStatus(err);
  if (status !== undefined) {
    const malformed = isMalformedJson(err);
    return problem({
      status,
      code: RequestValidationError.code,
      detail: malformed ? 'the request body is not valid JSON' : (err as Error).message,
      requestId,
      errors: malformed ? [{ path: 'body', message: 'not valid JSON' }] : undefined,
    });
  }
  return problemOf(err, { requestId });
}

/** A 4xx the framework raised about the request (http-errors' `expose`, Fastify's statusCode). */
function requestStatus(err: unknown): number | undefined {
  if (err === null || typeof err !== 'object') return undefined;
  const e = err as { status?: unknown; statusCode?: unknown; expose?: unknown; code?: unknown };
  const status = typeof e.status === 'number' ? e.status : e.statusCode;
  if (typeof status !== 'number' || status < 400 || status > 499) return undefined;
  // body-parser marks client errors `expose: true`; Fastify's own errors carry an FST_ code.
  if (e.expose === true || (typeof e.code === 'string' && e.code.startsWith('FST_'))) return status;
  return undefined;
}

function isMalformedJson(err: unknown): boolean {
  const e = err as { type?: unknown; code?: unknown };
  return e.type === 'entity.parse.failed' || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY';
}

const requestIdOf = (header: string | string[] | undefined): string | undefined =>
  typeof header === 'string' ? header : undefined;

/** Express: no x-powered-by; unknown paths and every error answered as problem+json. */
export function problemErrors(app: Express, logger: Logger): void {
  app.disable('x-powered-by');
  app.use((req: Request, res: Response) => {
    writeProblem(
      res,
      problem({
        status: 404,
        code: RouteNotFoundError.code,
        detail: `no route for ${req.method} ${req.path}`,
        requestId: requestIdOf(req.headers['x-request-id']),
      }),
    );
  });
  // Express recognises an error handler by its four parameters.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const answer = problemForError(err, requestIdOf(req.headers['x-request-id']));
    if (answer.status >= 500) logger.error({ err, path: req.path }, 'request failed');
    writeProblem(res, answer);
  });
}

/** Fastify: unknown paths and every error answered as problem+json. */
export function fastifyProblemErrors(app: FastifyInstance, logger: Logger): void {
  app.setNotFoundHandler((request, reply) => {
    reply.hijack();
    writeProblem(
      reply.raw,
      problem({
        status: 404,
        code: RouteNotFoundError.code,
        detail: `no route for ${request.method} ${request.url.split('?', 1)[0]}`,
        requestId: requestIdOf(request.headers['x-request-id']),
      }),
    );
  });
  app.setErrorHandler((err, request, reply) => {
    const answer = problemForError(err, requestIdOf(request.headers['x-request-id']));
    if (answer.status >= 500) logger.error({ err, path: request.url }, 'request failed');
    reply.hijack();
    writeProblem(reply.raw, answer);
  });
}
