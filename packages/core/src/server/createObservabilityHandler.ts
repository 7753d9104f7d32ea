import type { IncomingMessage, ServerResponse } from 'node:http';
import { z } from 'zod';
import type { Health, HealthReport } from '../health/createHealth.js';
import type { Metrics } from '../metrics/createMetrics.js';
import { parseOptions } from '../options.js';
import { problemOf, writeProblem } from '../problem/Problem.js';
import { basePathField, healthField, metricsField } from './adapterOptions.js';

/** The content type of health answers (IETF draft-inadarei-api-health-check). */
export const HEALTH_CONTENT_TYPE = 'application/health+json';

export interface ObservabilityHandlerOptions {
  /** Serves `/health`, `/health/live` and `/health/ready` when given. */
  health?: Health;
  /** Serves `/metrics` when given. */
  metrics?: Metrics;
  /** Prefix for every path, e.g. `/_internal`. Default none. */
  basePath?: string;
}

/**
 * Answers one request if it is for an observability endpoint; returns false (and touches
 * nothing) otherwise. Only GET and HEAD are answered.
 */
export type ObservabilityHandler = (req: IncomingMessage, res: ServerResponse) => boolean;

const optionsSchema = z
  .object({
    health: healthField.optional(),
    metrics: metricsField.optional(),
    basePath: basePathField.optional(),
  })
  .strict();

type Endpoint = 'health' | 'live' | 'ready' | 'metrics';

/** Sends a health report as `application/health+json`. */
export function sendHealthReport(res: ServerResponse, report: HealthReport, head = false): void {
  const body = JSON.stringify(report.body);
  res.statusCode = report.httpStatus;
  res.setHeader('content-type', HEALTH_CONTENT_TYPE);
  res.setHeader('cache-control', 'no-store');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(head ? undefined : body);
}

/** A probe or the metrics text failed: RFC 9457 problem+json (generic detail, no stack). */
function sendError(res: ServerResponse, err: unknown): void {
  writeProblem(res, problemOf(err), { 'cache-control': 'no-store' });
}

/**
 * Creates a framework-neutral handler for `GET /health`, `/health/live`, `/health/ready`
 * (IETF `application/health+json`: 200 for pass/warn, 503 for fail) and `/metrics`
 * (Prometheus text). The gateway and the Express and Fastify adapters mount it.
 *
 * @example
 * ```ts
 * import { createServer } from 'node:http';
 * import { createHealth, createMetrics, createObservabilityHandler } from '@trellis/core';
 *
 * const observe = createObservabilityHandler({ health: createHealth(), metrics: createMetrics() });
 * createServer((req, res) => {
 *   if (observe(req, res)) return;
 *   res.end('hello');
 * }).listen(3000);
 * ```
 */
export function createObservabilityHandler(
  options: ObservabilityHandlerOptions,
): ObservabilityHandler {
  const opts = parseOptions(optionsSchema, options, 'createObservabilityHandler');
  const { health, metrics } = opts;
  const base = opts.basePath ?? '';
  const routes = new Map<string, Endpoint>();
  if (health) {
    routes.set(`${base}/health`, 'health');
    routes.set(`${base}/health/live`, 'live');
    routes.set(`${base}/health/ready`, 'ready');
  }
  if (metrics) routes.set(`${base}/metrics`, 'metrics');

  return (req, res) => {
    const method = req.method;
    if (method !== 'GET' && method !== 'HEAD') return false;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const endpoint = routes.get(q === -1 ? url : url.slice(0, q));
    if (endpoint === undefined) return false;
    const head = method === 'HEAD';
    if (endpoint === 'metrics' && metrics) {
      metrics.text().then(
        (text) => {
          res.statusCode = 200;
          res.setHeader('content-type', metrics.contentType);
          res.setHeader('cache-control', 'no-store');
          res.setHeader('content-length', Buffer.byteLength(text));
          res.end(head ? undefined : text);
        },
        (err: unknown) => sendError(res, err),
      );
      return true;
    }
    if (health) {
      const probe =
        endpoint === 'live'
          ? health.live()
          : endpoint === 'ready'
            ? health.ready()
            : health.report();
      probe.then(
        (report) => sendHealthReport(res, report, head),
        (err: unknown) => sendError(res, err),
      );
      return true;
    }
    return false;
  };
}
