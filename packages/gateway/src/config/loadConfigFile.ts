/**
 * Reads a gateway config file for the CLI: JSON (`.json`) or YAML (`.yaml`/`.yml`; any other
 * extension: detected from the content), with `${ENV_VAR}` substitution in string values (for
 * secrets). An unset variable is reported together with every other problem of the config.
 */
import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { ConfigError, type ConfigIssue, formatPath } from '@trellis/core';
import { parse as parseYaml } from 'yaml';
import { gatewayConfigIssues } from './gatewayConfig.js';

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
  const format = formatOf(file, text);
  let raw: unknown;
  try {
    raw = format === 'yaml' ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    return fail(`not valid ${format === 'json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`, err);
  }
  const issues: ConfigIssue[] = [];
  const substituted = substituteEnv(raw, env, issues);
  if (issues.length > 0) {
    // Report every other problem of the config with the unset variables, not one at a time.
    // (Not the schema's complaint about the value left empty by an unset variable.)
    const unset = new Set(issues.map((i) => i.path));
    issues.push(...gatewayConfigIssues(substituted).filter((i) => !unset.has(i.path)));
    throw new ConfigError(`${file}: ${issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`, {
      component: 'gateway config file',
      issues,
    });
  }
  return substituted;
}

/** `.json` / `.yaml` / `.yml` by extension; otherwise JSON when the content starts with `{` or `[`. */
export function formatOf(file: string, text: string): 'json' | 'yaml' {
  const ext = extname(file).toLowerCase();
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  const first = text.replace(/^\uFEFF/, '').trimStart()[0];
  return first === '{' || first === '[' ? 'json' : 'yaml';
}
