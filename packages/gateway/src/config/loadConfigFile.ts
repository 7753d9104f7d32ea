/**
 * Reads a gateway config file for the CLI: JSON (`.json`) or YAML (`.yaml`/`.yml`), with
 * `${ENV_VAR}` substitution in string values (for secrets), validated by the gateway schema.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { ConfigError, type ConfigIssue, formatPath } from '@trellis/core';
import { parse as parseYaml } from 'yaml';

/** Replaces `${NAME}` in every string value; `$${NAME}` stays literal `${NAME}`. */
export function substituteEnv(
  value: unknown,
  env: Readonly<Record<string, string | undefined>>,
  issues: ConfigIssue[],
  path: PropertyKey[] = [],
): unknown {
  if (typeof value === 'string') {
    return value.replace(/\$?\$\{([A-Za-z_][A-Za-z0-9_]*)\}/g, (match, name: string) => {
      if (match.startsWith('$$')) return match.slice(1);
      const v = env[name];
      if (v === undefined) {
        issues.push({ path: formatPath(path), message: `environment variable ${name} is not set` });
        return '';
      }
      return v;
    });
  }
  if (Array.isArray(value)) return value.map((v, i) => substituteEnv(v, env, issues, [...path, i]));
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value))
      out[k] = substituteEnv(v, env, issues, [...path, k]);
    return out;
  }
  return value;
}

/**
 * Reads and parses a JSON or YAML config file, substituting `${ENV_VAR}` in string values; the
 * result is validated by `createGateway` / `parseGatewayConfig`. Throws `ConfigError`
 * (component `gateway config file`) when unreadable, unparsable or a variable is unset.
 *
 * @example
 * ```ts
 * import { createGateway, loadConfigFile } from '@trellis/gateway';
 * const gateway = createGateway(await loadConfigFile('gateway.yaml'));
 * ```
 */
export async function loadConfigFile(
  file: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): Promise<unknown> {
  const fail = (message: string, cause?: unknown): never => {
    throw new ConfigError(`${file}: ${message}`, {
      component: 'gateway config file',
      issues: [{ path: '(root)', message }],
      cause,
    });
  };
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    return fail(
      `cannot read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
      err,
    );
  }
  const ext = extname(file).toLowerCase();
  let raw: unknown;
  try {
    raw = ext === '.yaml' || ext === '.yml' ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    return fail(`not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`, err);
  }
  const issues: ConfigIssue[] = [];
  const substituted = substituteEnv(raw, env, issues);
  if (issues.length > 0) {
    throw new ConfigError(`${file}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
      component: 'gateway config file',
      issues,
    });
  }
  return substituted;
}
