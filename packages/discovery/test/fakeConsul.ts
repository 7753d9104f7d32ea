/**
 * An in-process stand-in for a Consul agent, for tests only: no Consul server can run on these
 * machines. It implements what `consulDiscovery` relies on, as Consul documents it:
 * `GET /v1/health/service/:name` with blocking queries (`index` + `wait`, `X-Consul-Index`,
 * `passing`), and the agent's register / deregister / TTL-pass endpoints. Tests can make the
 * index go backwards or drop to 0, answer 500s, or stop listening.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';

export interface FakeEntry {
  Node: { Node: string; Address: string };
  Service: {
    ID: string;
    Service: string;
    Address: string;
    Port: number;
    Tags: string[];
    Meta: Record<string, string>;
  };
  Checks: { CheckID: string; Status: 'passing' | 'warning' | 'critical' }[];
}

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  body: unknown;
}

export function entry(
  id: string,
  address: string,
  port: number,
  status: FakeEntry['Checks'][0]['Status'] = 'passing',
  service = 'users',
): FakeEntry {
  return {
    Node: { Node: 'node-1', Address: '127.0.0.1' },
    Service: { ID: id, Service: service, Address: address, Port: port, Tags: [], Meta: {} },
    Checks: [{ CheckID: `service:${id}`, Status: status }],
  };
}

export class FakeConsul {
  index = 1;
  readonly services = new Map<string, FakeEntry[]>();
  readonly requests: RecordedRequest[] = [];
  /** `X-Consul-Token` of each request, in order. */
  readonly tokens: (string | undefined)[] = [];
  /** Answer the next N health queries with this status. */
  failures = 0;
  failStatus = 500;
  /** The next health answers carry these indexes instead of the real one, in order. */
  overrideIndexes: number[] = [];
  /** Answer health queries at once, bumping the index each time (a very busy service). */
  neverBlock = false;
  #server: Server | undefined;
  #waiters = new Set<() => void>();
  port = 0;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  health(): RecordedRequest[] {
    return this.requests.filter((r) => r.path.startsWith('/v1/health/service/'));
  }

  set(service: string, entries: FakeEntry[]): void {
    this.services.set(service, entries);
    this.bump();
  }

  bump(): void {
    this.index++;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
  }

  async start(port = 0): Promise<void> {
    this.#server = createServer((req, res) => void this.#handle(req, res));
    this.#server.listen(port, '127.0.0.1');
    await once(this.#server, 'listening');
    const addr = this.#server.address();
    if (addr && typeof addr === 'object') this.port = addr.port;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    for (const wake of this.#waiters) wake();
    this.#waiters.clear();
    server.closeAllConnections();
    server.close();
    await once(server, 'close');
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    let raw = '';
    for await (const chunk of req) raw += chunk;
    const body = raw === '' ? undefined : JSON.parse(raw);
    this.tokens.push(req.headers['x-consul-token'] as string | undefined);
    this.requests.push({
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      body,
    });
    const json = (status: number, value: unknown, index?: number) => {
      res.writeHead(status, {
        'content-type': 'application/json',
        ...(index === undefined ? {} : { 'x-consul-index': String(index) }),
      });
      res.end(JSON.stringify(value));
    };

    if (req.method === 'GET' && url.pathname.startsWith('/v1/health/service/')) {
      const name = decodeURIComponent(url.pathname.slice('/v1/health/service/'.length));
      if (this.failures > 0) {
        this.failures--;
        res.writeHead(this.failStatus);
        res.end('rpc error: no cluster leader');
        return;
      }
      if (this.neverBlock) this.bump();
      const wanted = Number(url.searchParams.get('index') ?? 0);
      const waitS = Number((url.searchParams.get('wait') ?? '300s').replace(/s$/, ''));
      if (wanted > 0 && wanted >= this.index) {
        // Block until the index moves past `wanted` or `wait` runs out (Consul adds jitter; we do not).
        await new Promise<void>((resolve) => {
          const timer = setTimeout(() => {
            this.#waiters.delete(done);
            resolve();
          }, waitS * 1000);
          const done = () => {
            clearTimeout(timer);
            resolve();
          };
          this.#waiters.add(done);
        });
      }
      if (res.destroyed) return;
      let entries = this.services.get(name) ?? [];
      if (url.searchParams.has('passing'))
        entries = entries.filter((e) => e.Checks.every((c) => c.Status === 'passing'));
      const index = this.overrideIndexes.shift() ?? this.index;
      json(200, entries, index);
      return;
    }
    if (req.method === 'PUT' && url.pathname === '/v1/agent/service/register') {
      const b = body as {
        ID: string;
        Name: string;
        Address: string;
        Port: number;
        Tags: string[];
        Meta: Record<string, string>;
        Check: { TTL?: string; HTTP?: string };
      };
      const list = (this.services.get(b.Name) ?? []).filter((e) => e.Service.ID !== b.ID);
      const e = entry(b.ID, b.Address, b.Port, b.Check.HTTP ? 'passing' : 'critical', b.Name);
      e.Service.Tags = b.Tags;
      e.Service.Meta = b.Meta;
      list.push(e);
      this.set(b.Name, list);
      json(200, null);
      return;
    }
    if (req.method === 'PUT' && url.pathname.startsWith('/v1/agent/check/pass/')) {
      const checkId = decodeURIComponent(url.pathname.slice('/v1/agent/check/pass/'.length));
      for (const list of this.services.values()) {
        for (const e of list) {
          for (const c of e.Checks) {
            if (c.CheckID === checkId && c.Status !== 'passing') {
              c.Status = 'passing';
              this.bump();
            }
          }
        }
      }
      json(200, null);
      return;
    }
    if (req.method === 'PUT' && url.pathname.startsWith('/v1/agent/service/deregister/')) {
      const id = decodeURIComponent(url.pathname.slice('/v1/agent/service/deregister/'.length));
      for (const [name, list] of this.services)
        this.services.set(
          name,
          list.filter((e) => e.Service.ID !== id),
        );
      this.bump();
      json(200, null);
      return;
    }
    json(404, { error: 'not implemented by the fake' });
  }
}
