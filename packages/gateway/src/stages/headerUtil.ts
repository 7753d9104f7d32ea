import type { IncomingMessage } from 'node:http';
import { z } from 'zod';

/** The first value of a request header (Node joins most duplicates; `set-cookie` is an array). */
export function headerValue(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** An HTTP header name (RFC 9110 token), stored lower case. */
export const headerNameSchema = z
  .string()
  .regex(/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/, 'not a valid HTTP header name')
  .transform((s) => s.toLowerCase());

/** An HTTP header value: no CR, LF or NUL (header injection). */
export const headerValueSchema = z
  .string()
  .regex(/^[^\r\n\0]*$/, 'header values must not contain CR, LF or NUL');
