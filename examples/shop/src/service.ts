/** What every service of the example exposes to the code that starts it. */
import type { Health, Logger, Metrics } from '@trellis/core';

export interface ServiceHandle {
  readonly name: string;
  /** Base URL, e.g. http://127.0.0.1:3001 */
  readonly url: string;
  readonly health: Health;
  readonly metrics: Metrics;
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
}

/** A pino-shaped logger that prints one short line per entry; `quiet` drops debug and info. */
export function demoLogger(name: string, quiet = false): Logger {
  const write =
    (level: string) =>
    (objOrMsg: object | string, msg?: string): void => {
      if (quiet && (level === 'debug' || level === 'info')) return;
      if (level === 'debug') return;
      const text = typeof objOrMsg === 'string' ? objOrMsg : (msg ?? '');
      const fields = typeof objOrMsg === 'object' ? ` ${JSON.stringify(objOrMsg, replacer)}` : '';
      console.log(`[${name}] ${level}: ${text}${fields}`);
    };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

function replacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? `${value.name}: ${value.message}` : value;
}
