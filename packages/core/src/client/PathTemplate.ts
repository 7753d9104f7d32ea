import { RequestValidationError } from '../errors.js';
import { configError } from '../options.js';

const NAME = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/**
 * A path template (`/items/:id/parts/:part`) compiled once: `build(params)` concatenates the
 * static parts with each param percent-encoded as one whole segment.
 *
 * Param values are encoded with `encodeURIComponent`, so `/`, `?`, `#` and `%` cannot change
 * the path; the dot segments `.` and `..` and the empty string are rejected
 * (`RequestValidationError`) because servers would resolve or collapse them.
 */
export class PathTemplate {
  /** Parameter names in order of appearance. */
  readonly names: readonly string[];
  /** The template in OpenTelemetry `url.template` form: `/items/{id}`. */
  readonly otelTemplate: string;
  readonly #statics: readonly string[];

  constructor(template: string, endpointName: string) {
    if (!template.startsWith('/')) {
      throw configError('createClient', [
        { path: `endpoints.${endpointName}.path`, message: 'must start with "/"' },
      ]);
    }
    const names: string[] = [];
    const statics: string[] = [];
    let current = '';
    const segments = template.split('/');
    for (let i = 0; i < segments.length; i++) {
      const segment = segments[i] as string;
      if (i > 0) current += '/';
      if (!segment.startsWith(':')) {
        current += segment;
        continue;
      }
      const name = segment.slice(1);
      if (!NAME.test(name) || names.includes(name)) {
        const message = `path parameter "${segment}" must be a unique identifier`;
        throw configError('createClient', [{ path: `endpoints.${endpointName}.path`, message }]);
      }
      names.push(name);
      statics.push(current);
      current = '';
    }
    statics.push(current);
    this.names = names;
    this.#statics = statics;
    this.otelTemplate = template.replace(/:([A-Za-z0-9_$]+)/g, '{$1}');
  }

  /** Fills the template. `params` has been validated (or typed) by the caller. */
  build(params: Readonly<Record<string, unknown>> | undefined): string {
    const statics = this.#statics;
    const names = this.names;
    let out = statics[0] as string;
    for (let i = 0; i < names.length; i++) {
      const name = names[i] as string;
      const value = params?.[name];
      if (typeof value !== 'string' && typeof value !== 'number') {
        throw invalidParam(name, 'must be a string or a number');
      }
      const text = String(value);
      if (text === '' || text === '.' || text === '..') {
        throw invalidParam(name, 'must not be empty, "." or ".."');
      }
      out += encodeComponent(text, `params.${name}`) + (statics[i + 1] as string);
    }
    return out;
  }
}

/**
 * `encodeURIComponent`, but a lone UTF-16 surrogate (not valid Unicode, so not encodable as
 * UTF-8) is the caller's bad input: `RequestValidationError`, not `URIError: URI malformed`.
 */
export function encodeComponent(text: string, path: string): string {
  try {
    return encodeURIComponent(text);
  } catch {
    const message = 'must be well-formed Unicode (it contains a lone surrogate)';
    throw new RequestValidationError(`invalid request: ${path}: ${message}`, {
      issues: [{ path, message }],
    });
  }
}

function invalidParam(name: string, message: string) {
  return new RequestValidationError(`invalid request: params.${name}: ${message}`, {
    issues: [{ path: `params.${name}`, message }],
  });
}
