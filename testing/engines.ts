/**
 * Starts real engines (etcd, Redis, dnsmasq, Postgres) on free loopback ports for tests, runs promtool,
 * and makes throwaway TLS certificates with openssl. Shared by every package's tests.
 *
 * A test that needs an engine does:
 *
 *   describe.skipIf(!hasEngine('etcd'))('etcd', () => { ... startEtcd() ... })
 *
 * When the binary is missing, `hasEngine` throws under CI (so CI fails loudly) and otherwise
 * prints a loud skip reason and returns false.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import {
  chownSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type EngineName = 'etcd' | 'redis' | 'dnsmasq' | 'promtool' | 'openssl' | 'postgres';

const binaries: Record<EngineName, { bin: string; apt: string }> = {
  etcd: { bin: 'etcd', apt: 'etcd-server' },
  redis: { bin: 'redis-server', apt: 'redis-server' },
  dnsmasq: { bin: 'dnsmasq', apt: 'dnsmasq-base' },
  promtool: { bin: 'promtool', apt: 'prometheus' },
  openssl: { bin: 'openssl', apt: 'openssl' },
  postgres: { bin: 'postgres', apt: 'postgresql' },
};

const searchPath = () => [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/sbin'];

export function findBinary(bin: string): string | undefined {
  for (const dir of searchPath()) {
    if (!dir) continue;
    const candidate = join(dir, bin);
    const r = spawnSync('test', ['-x', candidate]);
    if (r.status === 0) return candidate;
  }
  return undefined;
}

const warned = new Set<string>();

/** True when the engine's binary is installed. Missing under CI: throws. */
export function hasEngine(name: EngineName): boolean {
  const { bin, apt } = binaries[name];
  if (name === 'postgres' ? postgresBinDir() !== undefined : findBinary(bin)) return true;
  const reason = `${name}: binary "${bin}" not found (apt-get install ${apt})`;
  if (process.env.CI) throw new Error(`Required test engine missing under CI: ${reason}`);
  if (!warned.has(name)) {
    warned.add(name);
    console.warn(`\n!!! SKIPPING tests that need ${reason}\n`);
  }
  return false;
}

/** A free TCP port on 127.0.0.1 (the port is released before it is returned). */
export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Whether 127.0.0.1:`port` can be listened on right now. */
async function canListen(port: number): Promise<boolean> {
  const server = createServer();
  const ok = await new Promise<boolean>((resolve) => {
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => resolve(true));
  });
  if (ok) {
    server.close();
    await once(server, 'close');
  }
  return ok;
}

/** The lowest port the kernel hands out to outgoing connections (Linux; 32768 elsewhere). */
export function ephemeralLow(): number {
  try {
    const low = Number(
      readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').split(/\s+/)[0],
    );
    return Number.isInteger(low) && low > 2048 ? low : 32768;
  } catch {
    return 32768;
  }
}

/**
 * `count` consecutive free ports, for a process that listens on `base`, `base + 1`, ... itself.
 * Chosen below the ephemeral range: `freePort()`'s neighbours can be the local port of any
 * outgoing connection another test has open, so `freePort() + 1` may be taken.
 */
export async function freePortBlock(count: number): Promise<number> {
  const high = ephemeralLow() - count;
  if (high <= 10_000) {
    throw new Error(`freePortBlock: the ephemeral range starts at ${high + count}, below 10000`);
  }
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = 10_000 + Math.floor(Math.random() * (high - 10_000));
    let free = true;
    for (let i = 0; i < count && free; i++) free = await canListen(base + i);
    if (free) return base;
  }
  throw new Error(`freePortBlock: no ${count} consecutive free ports found below ${high + count}`);
}

async function waitForPort(port: number, child: ChildProcess, what: string, ms = 15_000) {
  const started = Date.now();
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  while (Date.now() - started < ms) {
    if (exited) throw new Error(`${what} exited before listening on ${port}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = new Socket();
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
      s.connect(port, '127.0.0.1');
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not listen on ${port} within ${ms} ms`);
}

async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM') {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}

function captureOutput(child: ChildProcess): () => string {
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  return () => out.slice(-4000);
}

export interface EtcdHandle {
  /** e.g. http://127.0.0.1:23790 */
  readonly endpoint: string;
  readonly port: number;
  /** Stops etcd; data stays, so `start()` brings it back with the same keys and revisions. */
  stop(): Promise<void>;
  /** Kills etcd with SIGKILL (a crash). */
  kill(): Promise<void>;
  /** Starts it again on the same port after stop/kill. */
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  destroy(): Promise<void>;
}

/** Options of startEtcd/startRedis. */
export interface EngineOptions {
  /**
   * Run the engine in its own process group, so a terminal's Ctrl-C (SIGINT to the foreground
   * group) does not reach it and the program can stop its services before its engines.
   */
  detached?: boolean;
}

export async function startEtcd(options: EngineOptions = {}): Promise<EtcdHandle> {
  const dataDir = mkdtempSync(join(tmpdir(), 'trellis-etcd-'));
  const port = await freePort();
  const peerPort = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let output = () => '';
  const start = async () => {
    child = spawn(
      findBinary('etcd')!,
      [
        '--name=trellis-test',
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${endpoint}`,
        `--advertise-client-urls=${endpoint}`,
        `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
        `--initial-cluster=trellis-test=http://127.0.0.1:${peerPort}`,
        '--log-level=error',
        '--logger=zap',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached === true },
    );
    output = captureOutput(child);
    try {
      await waitForPort(port, child, 'etcd');
      // The port opens before the KV API is ready: wait for a successful range call.
      const until = Date.now() + 15_000;
      for (;;) {
        try {
          const res = await fetch(`${endpoint}/v3/kv/range`, {
            method: 'POST',
            body: JSON.stringify({ key: Buffer.from('ready').toString('base64') }),
          });
          if (res.ok) break;
        } catch {}
        if (Date.now() > until) throw new Error('etcd KV API not ready');
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${output()}`);
    }
  };
  await start();
  return {
    endpoint,
    port,
    start,
    stop: () => (child ? stopChild(child) : Promise.resolve()),
    kill: () => (child ? stopChild(child, 'SIGKILL') : Promise.resolve()),
    async destroy() {
      if (child) await stopChild(child);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface RedisHandle {
  /** e.g. redis://127.0.0.1:6390 */
  readonly url: string;
  readonly port: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startRedis(options: EngineOptions = {}): Promise<RedisHandle> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const start = async () => {
    child = spawn(
      findBinary('redis-server')!,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'], detached: options.detached === true },
    );
    const output = captureOutput(child);
    try {
      await waitForPort(port, child, 'redis-server');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${output()}`);
    }
  };
  await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    start,
    stop: () => (child ? stopChild(child) : Promise.resolve()),
  };
}

export interface DnsRecords {
  /** name -> IPv4 addresses */
  a?: Record<string, string[]>;
  /** name -> IPv6 addresses */
  aaaa?: Record<string, string[]>;
  /** SRV records, e.g. `{ name: '_http._tcp.api.test', target: 'a.api.test', port: 8080, priority: 0, weight: 10 }` */
  srv?: { name: string; target: string; port: number; priority?: number; weight?: number }[];
  /** TTL in seconds for every answer (dnsmasq `--local-ttl`). */
  ttl?: number;
}

export interface DnsHandle {
  /** `127.0.0.1:PORT`, for `dns.Resolver#setServers` */
  readonly server: string;
  readonly port: number;
  /** Restarts dnsmasq on the same port with new records. */
  setRecords(records: DnsRecords): Promise<void>;
  stop(): Promise<void>;
  start(): Promise<void>;
}

export async function startDns(records: DnsRecords): Promise<DnsHandle> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'trellis-dns-'));
  let current = records;
  let child: ChildProcess | undefined;
  const start = async () => {
    const conf: string[] = [];
    for (const [name, ips] of Object.entries(current.a ?? {}))
      for (const ip of ips) conf.push(`host-record=${name},${ip}`);
    for (const [name, ips] of Object.entries(current.aaaa ?? {}))
      for (const ip of ips) conf.push(`host-record=${name},${ip}`);
    for (const s of current.srv ?? [])
      conf.push(`srv-host=${s.name},${s.target},${s.port},${s.priority ?? 0},${s.weight ?? 0}`);
    const file = join(dir, 'dnsmasq.conf');
    writeFileSync(file, `${conf.join('\n')}\n`);
    child = spawn(
      findBinary('dnsmasq')!,
      [
        '--keep-in-foreground',
        '--no-resolv',
        '--no-hosts',
        '--no-poll',
        '--bind-interfaces',
        '--listen-address=127.0.0.1',
        `--port=${port}`,
        `--conf-file=${file}`,
        `--local-ttl=${current.ttl ?? 1}`,
        '--user=root',
        `--pid-file=${join(dir, 'pid')}`,
        '--log-facility=-',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const output = captureOutput(child);
    try {
      // dnsmasq also listens on TCP for DNS, so a TCP connect tells us it is up.
      await waitForPort(port, child, 'dnsmasq');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${output()}`);
    }
  };
  await start();
  const stop = async () => {
    if (child) await stopChild(child);
  };
  return {
    server: `127.0.0.1:${port}`,
    port,
    start,
    stop,
    async setRecords(next) {
      current = next;
      await stop();
      await start();
    },
  };
}

/** Runs `promtool check metrics` on exposition text. */
export function promtoolCheck(text: string): { ok: boolean; output: string } {
  const r = spawnSync(findBinary('promtool')!, ['check', 'metrics'], { input: text });
  return { ok: r.status === 0, output: `${r.stdout}${r.stderr}` };
}

/** A throwaway self-signed certificate for `localhost` / 127.0.0.1, made by openssl. */
export function selfSignedCert(): { key: string; cert: string } {
  const dir = mkdtempSync(join(tmpdir(), 'trellis-tls-'));
  try {
    const r = spawnSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost,IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { encoding: 'utf8' },
    );
    if (r.status !== 0) throw new Error(`openssl failed: ${r.stderr}`);
    return {
      key: readFileSync(join(dir, 'key.pem'), 'utf8'),
      cert: readFileSync(join(dir, 'cert.pem'), 'utf8'),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The newest Postgres server's binaries: Debian keeps them off PATH, in
 * /usr/lib/postgresql/<major>/bin.
 */
export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const majors = readdirSync(base)
    .filter((d) => /^\d+$/.test(d) && existsSync(join(base, d, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] === undefined ? undefined : join(base, majors[0], 'bin');
}

export interface PostgresHandle {
  /** e.g. postgres://postgres@127.0.0.1:54329/postgres (trust auth, loopback only) */
  readonly url: string;
  readonly port: number;
  /** Fast shutdown (SIGINT): connections are closed; data stays. */
  stop(): Promise<void>;
  /** SIGKILL to the postmaster (a crash); `start()` recovers the data. */
  kill(): Promise<void>;
  /** Starts it again on the same port after stop/kill. */
  start(): Promise<void>;
  /** Stops it and removes its data directory. */
  destroy(): Promise<void>;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Starts a throwaway Postgres server: `initdb` into a temp directory, then `postgres` on a free
 * loopback port (fsync off: test data only). Postgres refuses to run as root, so as root both
 * run as the `postgres` user through `runuser` (Debian's package creates that user).
 */
export async function startPostgres(options: EngineOptions = {}): Promise<PostgresHandle> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('startPostgres: no /usr/lib/postgresql/<major>/bin');
  const asRoot = process.getuid?.() === 0;
  const dir = mkdtempSync(join(tmpdir(), 'trellis-pg-'));
  const data = join(dir, 'data');
  const sudo = (cmd: string, args: string[]): [string, string[]] =>
    asRoot ? ['runuser', ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args];
  if (asRoot) {
    const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    if (id.status !== 0) throw new Error('startPostgres: running as root and no "postgres" user');
    chownSync(dir, Number(id.stdout.trim()), Number(gid.stdout.trim()));
  }
  const [initCmd, initArgs] = sudo(join(bin, 'initdb'), [
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-E',
    'UTF8',
    '--locale=C',
    '--no-sync',
  ]);
  const init = spawnSync(initCmd, initArgs, { encoding: 'utf8' });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`startPostgres: initdb failed: ${init.stderr}${init.stdout}`);
  }
  const port = await freePort();
  let child: ChildProcess | undefined;
  const postmasterPid = (): number | undefined => {
    try {
      const pid = Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]);
      return Number.isInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  };
  const start = async () => {
    const [cmd, args] = sudo(join(bin, 'postgres'), [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ]);
    child = spawn(cmd, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.detached === true,
    });
    const output = captureOutput(child);
    try {
      await waitForPort(port, child, 'postgres');
      // The port opens before the server accepts queries: wait for pg_isready.
      const until = Date.now() + 15_000;
      for (;;) {
        const r = spawnSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port)]);
        if (r.status === 0) break;
        if (Date.now() > until) throw new Error('postgres did not become ready');
        await new Promise((r) => setTimeout(r, 50));
      }
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${output()}`);
    }
  };
  const signal = async (sig: NodeJS.Signals) => {
    const pid = postmasterPid();
    if (pid !== undefined && isAlive(pid)) {
      process.kill(pid, sig);
      const until = Date.now() + 15_000;
      while (isAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    }
    if (child) await stopChild(child);
    child = undefined;
  };
  await start();
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop: () => signal('SIGINT'),
    kill: () => signal('SIGKILL'),
    async destroy() {
      await signal('SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
