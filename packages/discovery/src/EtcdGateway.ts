import { Agent, request } from 'undici';

/** A key-value pair as the v3 JSON gateway returns it (bytes base64, int64 as strings). */
export interface EtcdKv {
  readonly key: string;
  readonly value?: string;
  readonly mod_revision?: string;
  readonly lease?: string;
}

export interface EtcdHeader {
  readonly revision?: string;
}

/** One message of a watch stream. */
export interface EtcdWatchResult {
  readonly header?: EtcdHeader;
  readonly created?: boolean;
  readonly canceled?: boolean;
  readonly compact_revision?: string;
  readonly cancel_reason?: string;
  readonly events?: readonly { readonly type?: 'PUT' | 'DELETE'; readonly kv: EtcdKv }[];
}

export const b64 = (text: string | Buffer): string => Buffer.from(text).toString('base64');
export const unb64 = (text: string | undefined): string =>
  text === undefined ? '' : Buffer.from(text, 'base64').toString('utf8');

/** The end of a prefix range: the prefix with its last byte incremented (etcd's `WithPrefix`). */
export function prefixEnd(prefix: string): string {
  const bytes = Buffer.from(prefix);
  for (let i = bytes.length - 1; i >= 0; i--) {
    if (bytes[i]! < 0xff) {
      bytes[i]!++;
      return b64(bytes.subarray(0, i + 1));
    }
  }
  return b64(Buffer.from([0]));
}

/** An HTTP error answer from etcd's gateway. */
export class EtcdHttpError extends Error {
  readonly status: number;
  constructor(path: string, status: number, body: string) {
    super(`etcd ${path}: HTTP ${status}: ${body.slice(0, 200)}`);
    this.name = 'EtcdHttpError';
    this.status = status;
  }
}

/**
 * A small client for etcd's v3 JSON gateway (grpc-gateway) over undici: unary calls and the
 * newline-delimited watch stream, rotating through the endpoints when one fails.
 * @internal
 */
export class EtcdGateway {
  readonly #endpoints: readonly string[];
  readonly #agent: Agent;
  readonly #timeoutMs: number;
  #current = 0;

  constructor(endpoints: readonly string[], timeoutMs: number) {
    this.#endpoints = endpoints.map((e) => e.replace(/\/+$/, ''));
    this.#timeoutMs = timeoutMs;
    this.#agent = new Agent({ keepAliveTimeout: 10_000, connections: 16 });
  }

  #rotate(): void {
    this.#current = (this.#current + 1) % this.#endpoints.length;
  }

  /** POSTs JSON to `path` and parses the JSON answer; rotates the endpoint on network errors. */
  async call<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    const endpoint = this.#endpoints[this.#current]!;
    try {
      const res = await request(`${endpoint}${path}`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
        dispatcher: this.#agent,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        signal: signal ?? AbortSignal.timeout(this.#timeoutMs),
      });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new EtcdHttpError(path, res.statusCode, text);
      return JSON.parse(text) as T;
    } catch (err) {
      if (!(err instanceof EtcdHttpError)) this.#rotate();
      throw err;
    }
  }

  /**
   * Opens a watch and calls `onResult` for every message until the stream ends (resolves), fails
   * (rejects) or `signal` aborts (resolves).
   */
  async watch(
    create: Record<string, unknown>,
    signal: AbortSignal,
    onResult: (result: EtcdWatchResult) => void,
  ): Promise<void> {
    const endpoint = this.#endpoints[this.#current]!;
    let res: Awaited<ReturnType<typeof request>>;
    try {
      res = await request(`${endpoint}/v3/watch`, {
        method: 'POST',
        body: JSON.stringify({ create_request: create }),
        headers: { 'content-type': 'application/json' },
        dispatcher: this.#agent,
        headersTimeout: this.#timeoutMs,
        bodyTimeout: 0,
        signal,
      });
    } catch (err) {
      if (signal.aborted) return;
      this.#rotate();
      throw err;
    }
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      throw new EtcdHttpError('/v3/watch', res.statusCode, text);
    }
    let buffer = '';
    try {
      for await (const chunk of res.body) {
        buffer += (chunk as Buffer).toString('utf8');
        let nl = buffer.indexOf('\n');
        while (nl !== -1) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          nl = buffer.indexOf('\n');
          if (line === '') continue;
          const msg = JSON.parse(line) as {
            result?: EtcdWatchResult;
            error?: { message?: string };
          };
          if (msg.error) throw new Error(`etcd watch error: ${msg.error.message ?? line}`);
          if (msg.result) onResult(msg.result);
          if (signal.aborted) return;
        }
      }
    } catch (err) {
      if (signal.aborted) return;
      this.#rotate();
      throw err;
    }
    if (!signal.aborted) throw new Error('etcd watch stream ended');
  }

  async close(): Promise<void> {
    await this.#agent.destroy();
  }
}
