import type { z } from 'zod';
import { ConfigError, type ConfigIssue } from './errors.js';

/** Formats a zod issue path as `a.b[0].c`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Turns zod issues into `{ path, message }` pairs. */
export function toIssues(error: z.ZodError): ConfigIssue[] {
  return error.issues.map((issue) => ({ path: formatPath(issue.path), message: issue.message }));
}

/**
 * Validates `input` against `schema` and returns the parsed value, or throws a `ConfigError`
 * whose message names every offending field: `retry: invalid options: maxAttempts: Too small`.
 */
export function parseOptions<S extends z.ZodType>(
  schema: S,
  input: unknown,
  component: string,
): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw configError(component, toIssues(result.error), { cause: result.error });
}

/**
 * The one way Trellis builds a `ConfigError` by hand (for checks a schema cannot express):
 * `component: invalid options: path: message; path: message`, with `issues` listing each.
 */
export function configError(
  component: string,
  issues: readonly ConfigIssue[],
  options: { cause?: unknown; what?: string } = {},
): ConfigError {
  const detail = issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  return new ConfigError(`${component}: invalid ${options.what ?? 'options'}: ${detail}`, {
    component,
    issues: [...issues],
    ...(options.cause !== undefined && { cause: options.cause }),
  });
}
