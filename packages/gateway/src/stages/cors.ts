/**
 * CORS at the gateway: preflights are answered here (the upstream never sees them) and actual
 * requests from an allowed origin get `Access-Control-Allow-Origin` and friends. The
 * upstream's own `Access-Control-*` headers are dropped on CORS routes so the gateway's answer
 * is the only one.
 */
import { z } from 'zod';
import type { GatewayMiddleware } from '../chain/GatewayMiddleware.js';
import { CorsRejectedError } from '../errors.js';
import { headerNameSchema, headerValue } from './headerUtil.js';

const methodSchema = z
  .string()
  .regex(/^[A-Za-z]+$/, 'not an HTTP method')
  .transform((s) => s.toUpperCase());

export const corsSchema = z
  .object({
    origins: z
      .array(
        z
          .string()
          .refine(
            (s) => s === '*' || /^https?:\/\/[^/\s]+$/.test(s),
            "must be '*' or an origin such as https://app.example.com (scheme://host[:port], no path)",
          ),
      )
      .default([])
      .describe(
        "Allowed origins, compared exactly (`https://app.example.com`). `'*'` allows any origin (not with `credentials`).",
      ),
    originPatterns: z
      .array(
        z.string().refine((s) => {
          try {
            new RegExp(s);
            return true;
          } catch {
            return false;
          }
        }, 'not a valid regular expression'),
      )
      .default([])
      .describe(
        'Allowed origins as regular expressions (JavaScript syntax, anchored for you: `^...$`), e.g. `https://[a-z0-9-]+\\.example\\.com`.',
      ),
    methods: z
      .array(methodSchema)
      .default(['GET', 'HEAD', 'PUT', 'PATCH', 'POST', 'DELETE'])
      .describe('Methods a preflight may ask for (`Access-Control-Allow-Methods`).'),
    allowHeaders: z
      .array(headerNameSchema)
      .optional()
      .describe(
        'Request headers a preflight may ask for (`Access-Control-Allow-Headers`). When absent, the headers the preflight asks for are allowed (reflected).',
      ),
    exposeHeaders: z
      .array(headerNameSchema)
      .default([])
      .describe('Response headers the browser may read (`Access-Control-Expose-Headers`).'),
    credentials: z
      .boolean()
      .default(false)
      .describe('Send `Access-Control-Allow-Credentials: true` (cookies, Authorization).'),
    maxAgeSec: z
      .number()
      .int()
      .min(0)
      .max(86_400)
      .default(600)
      .describe('How long a browser may cache a preflight answer (`Access-Control-Max-Age`).'),
  })
  .strict()
  .refine((c) => c.origins.length > 0 || c.originPatterns.length > 0, {
    message: 'give at least one entry in origins or originPatterns',
    path: ['origins'],
  })
  .refine((c) => !(c.credentials && c.origins.includes('*')), {
    message: "origins '*' cannot be combined with credentials: true (browsers reject it)",
    path: ['credentials'],
  })
  .describe('CORS for this route; preflights are answered by the gateway.');

export type CorsConfig = z.output<typeof corsSchema>;

/** Builds the CORS stage for one route. */
export function corsMiddleware(config: CorsConfig): GatewayMiddleware {
  const anyOrigin = config.origins.includes('*');
  const exact = new Set(config.origins);
  const patterns = config.originPatterns.map((p) => new RegExp(`^(?:${p})$`));
  const methods = new Set(config.methods);
  const allowMethods = config.methods.join(', ');
  const allowHeaders = config.allowHeaders ? new Set(config.allowHeaders) : undefined;
  const allowHeadersValue = config.allowHeaders?.join(', ');
  const expose = config.exposeHeaders.join(', ');
  const maxAge = String(config.maxAgeSec);

  const allowed = (origin: string): boolean => {
    if (anyOrigin || exact.has(origin)) return true;
    for (const p of patterns) if (p.test(origin)) return true;
    return false;
  };
  // `*` is only echoed as `*` when credentials are off; otherwise the origin itself is echoed.
  const allowOriginValue = (origin: string) => (anyOrigin && !config.credentials ? '*' : origin);

  // Upstream CORS headers are replaced by the gateway's; Vary gains Origin. Works whether the
  // proxy applies `responseHeaders` before or after the hooks.
  const fixUpstream = (headers: Record<string, string | string[]>, allowOrigin: string) => {
    for (const name of Object.keys(headers)) {
      if (name.toLowerCase().startsWith('access-control-')) delete headers[name];
    }
    headers['access-control-allow-origin'] = allowOrigin;
    if (config.credentials) headers['access-control-allow-credentials'] = 'true';
    if (expose) headers['access-control-expose-headers'] = expose;
    const vary = headers.vary;
    if (vary === undefined) headers.vary = 'Origin';
    else {
      const text = Array.isArray(vary) ? vary.join(', ') : vary;
      if (!/(^|,)\s*(origin|\*)\s*(,|$)/i.test(text)) headers.vary = `${text}, Origin`;
    }
  };

  return async (ctx, next) => {
    const origin = headerValue(ctx.req, 'origin');
    if (origin === undefined) return next();
    const requestedMethod =
      ctx.req.method === 'OPTIONS'
        ? headerValue(ctx.req, 'access-control-request-method')
        : undefined;

    if (requestedMethod !== undefined) {
      // Preflight: answered here, never forwarded.
      const requestedHeaders = headerValue(ctx.req, 'access-control-request-headers');
      if (!allowed(origin)) {
        return ctx.reply(new CorsRejectedError(`origin ${origin} is not allowed`, { origin }));
      }
      if (!methods.has(requestedMethod.toUpperCase())) {
        return ctx.reply(
          new CorsRejectedError(`method ${requestedMethod} is not allowed`, { origin }),
        );
      }
      let headersValue = allowHeadersValue;
      if (requestedHeaders !== undefined && requestedHeaders.trim() !== '') {
        const asked = requestedHeaders.split(',').map((h) => h.trim().toLowerCase());
        if (allowHeaders) {
          const denied = asked.filter((h) => h !== '' && !allowHeaders.has(h));
          if (denied.length > 0) {
            return ctx.reply(
              new CorsRejectedError(`request headers not allowed: ${denied.join(', ')}`, {
                origin,
              }),
            );
          }
        } else {
          headersValue = asked.filter((h) => /^[!#$%&'*+\-.^_`|~0-9a-z]+$/.test(h)).join(', ');
        }
      }
      const headers: Record<string, string> = {
        ...ctx.responseHeaders,
        'access-control-allow-origin': allowOriginValue(origin),
        'access-control-allow-methods': allowMethods,
        'access-control-max-age': maxAge,
        vary: 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers',
      };
      if (headersValue) headers['access-control-allow-headers'] = headersValue;
      if (config.credentials) headers['access-control-allow-credentials'] = 'true';
      ctx.res.writeHead(204, headers);
      ctx.res.end();
      return;
    }

    if (allowed(origin)) {
      const rh = ctx.responseHeaders;
      const allowOrigin = allowOriginValue(origin);
      // For gateway error answers (401, 429...): readable by the browser too.
      rh['access-control-allow-origin'] = allowOrigin;
      if (config.credentials) rh['access-control-allow-credentials'] = 'true';
      if (expose) rh['access-control-expose-headers'] = expose;
      ctx.onUpstreamResponse((_status, headers) => fixUpstream(headers, allowOrigin));
    } else {
      // The gateway owns CORS on this route: an upstream's reflected Access-Control-* headers
      // never reach a disallowed origin.
      ctx.onUpstreamResponse(dropUpstreamCors);
    }
    return next();
  };
}

function dropUpstreamCors(_status: number, headers: Record<string, string | string[]>): void {
  for (const name of Object.keys(headers)) {
    if (name.toLowerCase().startsWith('access-control-')) delete headers[name];
  }
}
