// biome-ignore-all lint/suspicious/noTemplateCurlyInString: these tests use literal ${ENV} placeholders
/**
 * The `trellis-gateway` CLI as a real child process (run from source through tsx): `--check`,
 * serving a real upstream, SIGHUP reload (valid and invalid file), SIGTERM graceful exit 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type EchoUpstream, startEchoUpstream } from './echoUpstream.js';
import type { EchoBody } from './edgeHarness.js';
import { signal } from './helpers.js';

const pkg = resolve(import.meta.dirname, '..');
const cli = join(pkg, 'src/cli.ts');

interface Run {
  readonly child: ChildProcess;
  readonly lines: () => Record<string, unknown>[];
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
    cwd: pkg,
    env: { ...process.env, ...env, TSX_TSCONFIG_PATH: join(pkg, 'tsconfig.json'), CI: '' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const run: Run = {
    child,
    stdout: '',
    stderr: '',
    lines: () =>
      run.stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
  child.stdout?.on('data', (c: Buffer) => {
    run.stdout += c.toString();
  });
  child.stderr?.on('data', (c: Buffer) => {
    run.stderr += c.toString();
  });
  return run;
}

async function exitCode(run: Run): Promise<number | null> {
  if (run.child.exitCode !== null) return run.child.exitCode;
  const [code] = await once(run.child, 'exit');
  return code as number | null;
}

const waitFor = <T>(fn: () => T | Promise<T>) => vi.waitFor(fn, { timeout: 15_000, interval: 50 });

let dir: string;
let upstream: EchoUpstream;

function writeConfig(name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trellis-cli-'));
  upstream = await startEchoUpstream();
});
afterAll(async () => {
  await upstream.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('trellis-gateway --check', () => {
  it('exits 0 for a valid YAML config, with env substitution', async () => {
    const file = writeConfig(
      'ok.yaml',
      `routes:\n  - path: /api\n    upstream: { urls: ["${upstream.url}"] }\n    headers: { request: { set: { x-env: "\${CLI_TEST_VALUE}" } } }\n`,
    );
    const run = start(['--config', file, '--check'], { CLI_TEST_VALUE: 'v' });
    expect(await exitCode(run)).toBe(0);
    expect(run.stdout).toContain('valid (1 routes)');
  });

  it('exits 1 naming every bad field (JSON)', async () => {
    const file = writeConfig(
      'bad.json',
      JSON.stringify({
        routes: [
          { path: '/api', upstream: { urls: ['ftp://x'] } },
          {
            path: '/b',
            upstream: { urls: ['http://127.0.0.1:1'] },
            rateLimit: { limit: 0, windowMs: 1000 },
          },
        ],
        auth: { jwt: { a: { secret: 'short', algorithms: ['HS256'] } } },
      }),
    );
    const run = start(['--config', file, '--check']);
    expect(await exitCode(run)).toBe(1);
    expect(run.stderr).toContain('invalid config');
    expect(run.stderr).toContain('routes[0].upstream.urls[0]');
    expect(run.stderr).toContain('routes[1].rateLimit.limit');
    expect(run.stderr).toContain('auth.jwt.a.secret');
  });

  it('exits 1 for a route naming an unknown JWT provider, a missing env var, bad YAML, a missing file', async () => {
    const unknown = writeConfig(
      'unknown.yaml',
      `routes:\n  - name: orders\n    path: /orders\n    upstream: { urls: ["${upstream.url}"] }\n    auth: { jwt: idp }\n`,
    );
    const yaml = writeConfig('broken.yaml', 'routes: [\n');
    const env = writeConfig(
      'env.yaml',
      'routes: []\nauth: { jwt: { a: { secret: "${NOPE_NOT_SET}", algorithms: [HS256] } } }\n',
    );
    // Four child processes at once (each takes a second or two to load from source).
    const [r1, r2, r3, r4] = [unknown, env, yaml, join(dir, 'missing.json')].map((f) =>
      start(['--config', f, '--check']),
    ) as [Run, Run, Run, Run];
    expect(await Promise.all([r1, r2, r3, r4].map(exitCode))).toEqual([1, 1, 1, 1]);
    expect(r1.stderr).toContain('routes[0].auth.jwt: unknown JWT provider "idp"');
    expect(r1.stderr).not.toContain('routes.routes');
    expect(r2.stderr).toContain('auth.jwt.a.secret: environment variable NOPE_NOT_SET is not set');
    expect(r3.stderr).toContain('not valid YAML');
    expect(r4.stderr).toContain('cannot read (ENOENT)');
  });

  it('exits 2 on usage errors', async () => {
    const run = start(['--port', '99999999', '--config', 'x.json']);
    expect(await exitCode(run)).toBe(2);
    expect(run.stderr).toContain('--port must be 0-65535');
    const none = start([]);
    expect(await exitCode(none)).toBe(2);
    expect(none.stderr).toContain('--config is required');
  });
});

describe('trellis-gateway serving', () => {
  it('proxies, reloads on SIGHUP (keeping the old config when invalid), exits 0 on SIGTERM', async () => {
    const config = (tag: string) =>
      `listen: { port: 8, host: 0.0.0.0, drainDelayMs: 0 }\nroutes:\n  - name: api\n    path: /api\n    upstream: { urls: ["${upstream.url}"] }\n    headers: { request: { set: { x-tag: ${tag} } } }\n`;
    const file = writeConfig('serve.yaml', config('one'));
    const pidFile = join(dir, 'gateway.pid');
    // --port/--host override listen.port/listen.host from the file.
    const run = start([
      '--config',
      file,
      '--port',
      '0',
      '--host',
      '127.0.0.1',
      '--pid-file',
      pidFile,
    ]);
    try {
      const listening = await waitFor(() => {
        const line = run.lines().find((l) => l.msg === 'gateway: listening');
        if (!line) throw new Error(`not listening yet: ${run.stdout}${run.stderr}`);
        return line;
      });
      expect(listening.host).toBe('127.0.0.1');
      // `pidof trellis-gateway` finds it; --pid-file names it; /metrics is on the admin port.
      expect(readFileSync(pidFile, 'utf8').trim()).toBe(String(run.child.pid));
      if (process.platform === 'linux') {
        expect(readFileSync(`/proc/${run.child.pid}/comm`, 'utf8').trim()).toBe('trellis-gateway');
      }
      expect(listening.adminPort).toEqual(expect.any(Number));
      expect(
        (await fetch(`http://127.0.0.1:${listening.adminPort as number}/metrics`)).status,
      ).toBe(200);
      const base = `http://127.0.0.1:${listening.port as number}`;
      const tagOf = async () => {
        const res = await fetch(`${base}/api/items?x=1`);
        expect(res.status).toBe(200);
        return ((await res.json()) as EchoBody).headers['x-tag'];
      };
      expect(await tagOf()).toBe('one');
      // One access-log line per request, as pino-shaped JSON.
      await waitFor(() =>
        expect(run.lines().find((l) => l.msg === 'request')).toMatchObject({
          level: 30,
          path: '/api/items',
          route: 'api',
          status: 200,
        }),
      );

      writeConfig('serve.yaml', config('two'));
      run.child.kill('SIGHUP');
      await waitFor(async () => expect(await tagOf()).toBe('two'));

      writeConfig('serve.yaml', 'routes: [ { path: "no-slash" } ]\n');
      run.child.kill('SIGHUP');
      await waitFor(() => {
        const failed = run
          .lines()
          .find((l) => l.msg === 'gateway: reload failed, keeping the running config');
        expect(failed).toBeDefined();
        expect(JSON.stringify(failed)).toContain('routes[0].path');
      });
      expect(await tagOf()).toBe('two');

      run.child.kill('SIGTERM');
      expect(await exitCode(run)).toBe(0);
      expect(existsSync(pidFile)).toBe(false);
      expect(run.lines().map((l) => l.msg)).toContain('health: stopping -> stopped');
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
    }
  });

  it('SIGTERM lets an in-flight request finish, then exits 0', async () => {
    const { createServer } = await import('node:http');
    const { promise: atUpstream, fire: arrived } = signal();
    let finish: () => void = () => {};
    const slow = createServer((_req, res) => {
      finish = () => res.end('slow done');
      arrived();
    });
    slow.listen(0, '127.0.0.1');
    await once(slow, 'listening');
    const port = (slow.address() as { port: number }).port;
    const file = writeConfig(
      'slow.yaml',
      `listen: { port: 0, host: 127.0.0.1, drainDelayMs: 0 }\nroutes:\n  - path: /slow\n    upstream: { urls: ["http://127.0.0.1:${port}"] }\n`,
    );
    const run = start(['--config', file]);
    try {
      const listening = await waitFor(() => {
        const line = run.lines().find((l) => l.msg === 'gateway: listening');
        if (!line) throw new Error('not listening yet');
        return line;
      });
      const pending = fetch(`http://127.0.0.1:${listening.port as number}/slow`);
      await atUpstream;
      run.child.kill('SIGTERM');
      // The gateway starts shutting down with the request in flight; the upstream answers later.
      await waitFor(() =>
        expect(run.lines().map((l) => l.msg)).toContain('health: ready -> draining'),
      );
      expect(run.child.exitCode).toBeNull();
      finish();
      const res = await pending;
      expect(res.status).toBe(200);
      expect(await res.text()).toBe('slow done');
      expect(await exitCode(run)).toBe(0);
    } finally {
      if (run.child.exitCode === null) run.child.kill('SIGKILL');
      slow.closeAllConnections();
      slow.close();
    }
  });
});
