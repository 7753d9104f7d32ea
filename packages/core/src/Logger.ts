type LogFn = {
  (obj: object, msg?: string): void;
  (msg: string): void;
};

/** The subset of pino's API Trellis uses. Pass a pino logger, or anything shaped like it. */
export interface Logger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  child?(bindings: Record<string, unknown>): Logger;
}

const noop = () => {};

/** The default logger: library code never writes to the console. */
export const silentLogger: Logger = { debug: noop, info: noop, warn: noop, error: noop };
