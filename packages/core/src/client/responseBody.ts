/** Response bodies as the client reads them: JSON when declared so, text otherwise. */
import type { ClientExchange } from './ClientExchange.js';
import type { HttpMethod } from './endpoint.js';

const JSON_TYPE = /[/+]json\b/i;

/**
 * Parses a body: JSON when `content-type` says `json` (throws on malformed JSON), text for any
 * other declared type, and JSON-if-it-parses-else-text when there is no `content-type`.
 */
export function parseBody(exchange: ClientExchange, method: HttpMethod): unknown {
  if (method === 'HEAD') return undefined;
  const buf = exchange.body();
  if (buf === undefined || buf.length === 0) return undefined;
  const text = buf.toString('utf8');
  const type = exchange.headers['content-type'];
  if (type === undefined) return parseOrText(text);
  return JSON_TYPE.test(type) ? JSON.parse(text) : text;
}

/** Like {@link parseBody}, for error bodies: falls back to the text when the JSON is malformed. */
export function readBody(exchange: ClientExchange, method: HttpMethod): unknown {
  if (method === 'HEAD') return undefined;
  const buf = exchange.body();
  if (buf === undefined || buf.length === 0) return undefined;
  const text = buf.toString('utf8');
  const type = exchange.headers['content-type'];
  return type === undefined || JSON_TYPE.test(type) ? parseOrText(text) : text;
}

function parseOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
