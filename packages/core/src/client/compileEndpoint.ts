import type { z } from 'zod';
import { isSchema } from './clientOptions.js';
import type { EndpointDefinition, HttpMethod } from './endpoint.js';
import { type IdempotencyKeyMode, wantsIdempotencyKey } from './idempotencyKey.js';
import { PathTemplate } from './PathTemplate.js';

/** An endpoint prepared once, when the client is created: path compiled, schemas split out. */
export interface CompiledEndpoint {
  readonly name: string;
  readonly method: HttpMethod;
  readonly template: PathTemplate;
  readonly spanName: string;
  readonly params: z.ZodType | undefined;
  readonly query: z.ZodType | undefined;
  readonly body: z.ZodType | undefined;
  readonly headers: z.ZodType | undefined;
  /** The 2xx schema when `response` is a single schema. */
  readonly single: z.ZodType | undefined;
  /** Schemas by status when `response` is a map. */
  readonly byStatus: ReadonlyMap<number, z.ZodType> | undefined;
  /** Send an `Idempotency-Key` with each call. */
  readonly idempotencyKey: boolean;
}

/** Compiles one (already validated) endpoint definition. */
export function compileEndpoint(
  name: string,
  def: EndpointDefinition,
  idempotencyKey?: IdempotencyKeyMode,
): CompiledEndpoint {
  const template = new PathTemplate(def.path, name);
  let single: z.ZodType | undefined;
  let byStatus: Map<number, z.ZodType> | undefined;
  if (isSchema(def.response)) {
    single = def.response;
  } else {
    byStatus = new Map();
    for (const [status, s] of Object.entries(def.response)) byStatus.set(Number(status), s);
  }
  return {
    name,
    method: def.method,
    template,
    spanName: `${def.method} ${template.otelTemplate}`,
    params: def.params,
    query: def.query,
    body: def.body,
    headers: def.headers,
    single,
    byStatus,
    idempotencyKey: wantsIdempotencyKey(def.method, def.idempotencyKey, idempotencyKey),
  };
}
