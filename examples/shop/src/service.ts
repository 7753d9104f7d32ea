/** What every service of the example exposes to the code that starts it. */
import {
  createAdminServer,
  type Health,
  type Logger,
  type Metrics,
  requestContextMixin,
  type StatusRegistry,
} from '@trellis/core';
import pino, { type DestinationStream, type Logger as PinoLogger } from 'pino';

export interface ServiceHandle {
  readonly name: string;
  /** Base URL, e.g. http://127.0.0.1:3001 */
  readonly url: string;
  readonly health: Health;
  readonly metrics: Metrics;
  /** The service's live status registry (breakers, balancers, budgets, clients, health). */
  readonly status: StatusRegistry;
  /** Its status page (`/admin/`) and admin API, on a loopback listener of its own. */
  readonly adminUrl: string;
  /** Runs the service's graceful shutdown sequence (core's `health.shutdown()`). */
  stop(): Promise<void>;
}

export interface ServiceOptions {
  /** 0 picks a free port. */
  readonly port: number;
  readonly host?: string;
  /** How long readiness fails before the server stops accepting (core's drain delay). */
  readonly drainDelayMs: number;
  readonly logger: Logger;
  /** Port of the admin listener (status page, admin API); default 0 (any free port). */
  readonly adminPort?: number;
}

export interface ShopLoggerOptions {
  /** Only warnings and errors. */
  readonly quiet?: boolean;
  /** Where the JSON lines go; default stdout (written synchronously, so nothing is lost on exit). */
  readonly destination?: DestinationStream;
}

/**
 * The example's logger: pino, one JSON line per entry with an ISO timestamp and the service's
 * name, plus `requestId` (and `traceId`) of the request being served (`requestContextMixin`),
 * so one request can be followed across the gateway and the services by its id:
 * `grep <request id>` over all their output.
 */
export function shopLogger(name: string, options: ShopLoggerOptions = {}): PinoLogger {
  return pino(
    {
      level: options.quiet ? 'warn' : 'info',
      base: { service: name },
      mixin: requestContextMixin,
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    options.destination ?? pino.destination({ fd: 1, sync: true }),
  );
}

/**
 * Serves the registry's admin API and status page (`createAdminServer`) on a loopback listener
 * of its own, closed by the service's shutdown sequence; returns the page's URL.
 */
export async function startAdmin(
  status: StatusRegistry,
  health: Health,
  logger: Logger,
  port = 0,
): Promise<string> {
  const admin = createAdminServer({ status, port, logger });
  const { url } = await admin.listen();
  health.addCleanup(() => admin.close());
  return url;
}
