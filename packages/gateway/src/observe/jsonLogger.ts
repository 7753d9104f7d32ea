/**
 * A tiny pino-compatible JSON-lines logger for the CLI (pino's line shape: numeric `level`,
 * `time`, `msg`, the object's fields; errors serialised as `{ type, message, code, stack }`).
 * Embedding code passes its own pino logger instead.
 */
import type { Logger } from '@trellis/core';

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const;
export type LogLevel = keyof typeof LEVELS;

function serialise(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { type: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out.code = code;
    const issues = (value as { issues?: unknown }).issues;
    if (issues !== undefined) out.issues = issues;
    out.stack = value.stack;
    return out;
  }
  return value;
}

export function createJsonLogger(
  write: (line: string) => void,
  level: LogLevel = 'info',
  bindings: Record<string, unknown> = {},
): Logger {
  const min = LEVELS[level];
  const at = (name: LogLevel) => {
    const n = LEVELS[name];
    return (objOrMsg: object | string, msg?: string): void => {
      if (n < min) return;
      const fields = typeof objOrMsg === 'string' ? {} : objOrMsg;
      const text = typeof objOrMsg === 'string' ? objOrMsg : msg;
      const line = { level: n, time: Date.now(), ...bindings, ...fields, msg: text };
      write(`${JSON.stringify(line, serialise)}\n`);
    };
  };
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => createJsonLogger(write, level, { ...bindings, ...more }),
  };
}
