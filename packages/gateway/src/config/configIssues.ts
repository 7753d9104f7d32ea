/**
 * Every problem of a gateway config at once: the schema's issues (zod reports them all) plus
 * the checks that span fields (a route naming an unknown JWT provider, `apiKey: true` without
 * keys, duplicate route names, a Redis rate-limit store without `redis.url`), each named by its
 * path (`routes[0].auth.jwt`). `parseGatewayConfig` and the CLI's file loader report them in one
 * `ConfigError`.
 */
import type { ConfigIssue } from '@trellis/core';

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Cross-field problems of a (possibly invalid) raw config; never throws. */
export function crossFieldIssues(input: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  if (!isObj(input) || !Array.isArray(input.routes)) return issues;
  const auth = isObj(input.auth) ? input.auth : {};
  const providers = isObj(auth.jwt) ? Object.keys(auth.jwt) : [];
  const hasKeys = auth.apiKeys !== undefined;
  const names = new Map<string, number>();
  input.routes.forEach((route: unknown, i) => {
    if (!isObj(route)) return;
    const at = `routes[${i}]`;
    if (typeof route.name === 'string') {
      const first = names.get(route.name);
      if (first !== undefined) {
        issues.push({
          path: `${at}.name`,
          message: `duplicate route name ${route.name} (also routes[${first}])`,
        });
      } else names.set(route.name, i);
    }
    const ra = route.auth;
    if (isObj(ra)) {
      if (typeof ra.jwt === 'string' && !providers.includes(ra.jwt)) {
        const known =
          providers.length > 0
            ? ` (defined: ${providers.join(', ')})`
            : ' (define it under auth.jwt)';
        issues.push({
          path: `${at}.auth.jwt`,
          message: `unknown JWT provider "${ra.jwt}"${known}`,
        });
      }
      if (ra.apiKey === true && !hasKeys) {
        issues.push({
          path: `${at}.auth.apiKey`,
          message: 'apiKey: true needs keys under auth.apiKeys',
        });
      }
    }
    const rl = route.rateLimit;
    if (isObj(rl) && rl.store === 'redis' && input.redis === undefined) {
      issues.push({
        path: `${at}.rateLimit.store`,
        message: "store 'redis' needs the top-level redis.url",
      });
    }
  });
  return issues;
}
