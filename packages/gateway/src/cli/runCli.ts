/**
 * The `trellis-gateway` command:
 *
 *   trellis-gateway --config gateway.yaml [--check] [--port 8080] [--host 0.0.0.0]
 *                   [--log-level info] [--pid-file /run/trellis-gateway.pid]
 *
 * `--check` validates the file (syntax, schema, route references) and exits 0, or 1 with one
 * line per bad field on stderr. Otherwise the gateway listens; SIGHUP re-reads the file and
 * reloads (an invalid file is logged and the running config kept); SIGTERM/SIGINT run core's
 * graceful shutdown (`createHealth`): readiness fails, after `listen.drainDelayMs` the gateway
 * stops accepting, in-flight requests finish (up to `listen.closeTimeoutMs`), exit 0.
 * The process is titled `trellis-gateway` (`kill -HUP $(pidof trellis-gateway)`); `--pid-file`
 * writes its pid and removes the file on shutdown. `/metrics` is on the admin listener
 * (127.0.0.1:9901 unless `admin.port` says otherwise).
 */
import { unlinkSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, createHealth, type Logger, silentLogger } from '@trellis/core';
import { parseGatewayConfig } from '../config/gatewayConfig.js';
import { loadConfigFile } from '../config/loadConfigFile.js';
import { createGateway, type Gateway } from '../createGateway.js';
import { createJsonLogger, type LogLevel } from '../observe/jsonLogger.js';

const USAGE = `Usage: trellis-gateway --config <gateway.json|gateway.yaml> [options]

Options:
  -c, --config <file>    config file: JSON or YAML (by extension, else by content); \${ENV} is substituted
      --check            validate the config and exit (0 valid, 1 invalid)
  -p, --port <n>         listen port (overrides listen.port)
      --host <addr>      listen address (overrides listen.host)
      --log-level <lvl>  debug | info | warn | error (default info)
      --pid-file <file>  write the process id there (removed on shutdown)
  -h, --help             show this help

Signals: SIGHUP reloads the config file; SIGTERM/SIGINT shut down gracefully.
The process title is trellis-gateway; /metrics is served on 127.0.0.1:9901 (admin.port).
`;

export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
}

const defaultIo: CliIo = {
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  env: process.env,
};

function describeError(err: unknown): string {
  if (err instanceof ConfigError) {
    return err.issues.map((i) => `  ${i.path}: ${i.message}`).join('\n');
  }
  return `  ${(err as Error).message ?? String(err)}`;
}

interface Parsed {
  config: string;
  check: boolean;
  port: number | undefined;
  host: string | undefined;
  logLevel: LogLevel;
  pidFile: string | undefined;
}

function parseCliArgs(argv: readonly string[]): Parsed | { usage: string; code: number } {
  let values: ReturnType<typeof parse>['values'];
  const parse = (a: readonly string[]) =>
    parseArgs({
      args: [...a],
      strict: true,
      allowPositionals: false,
      options: {
        config: { type: 'string', short: 'c' },
        check: { type: 'boolean', default: false },
        port: { type: 'string', short: 'p' },
        host: { type: 'string' },
        'log-level': { type: 'string', default: 'info' },
        'pid-file': { type: 'string' },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  try {
    values = parse(argv).values;
  } catch (err) {
    return { usage: `trellis-gateway: ${(err as Error).message}\n\n${USAGE}`, code: 2 };
  }
  if (values.help) return { usage: USAGE, code: 0 };
  if (!values.config)
    return { usage: `trellis-gateway: --config is required\n\n${USAGE}`, code: 2 };
  let port: number | undefined;
  if (values.port !== undefined) {
    port = Number(values.port);
    if (!Number.isInteger(port) || port < 0 || port > 65_535) {
      return { usage: `trellis-gateway: --port must be 0-65535, got ${values.port}\n`, code: 2 };
    }
  }
  const level = values['log-level'] as string;
  if (!['debug', 'info', 'warn', 'error'].includes(level)) {
    return { usage: `trellis-gateway: --log-level must be debug|info|warn|error\n`, code: 2 };
  }
  return {
    config: values.config,
    check: values.check ?? false,
    port,
    host: values.host,
    logLevel: level as LogLevel,
    pidFile: values['pid-file'],
  };
}

/** Loads, substitutes and validates the file; also builds (and closes) a gateway so route references are checked. */
async function loadAndValidate(file: string, io: CliIo, logger: Logger) {
  const raw = await loadConfigFile(file, io.env);
  const config = parseGatewayConfig(raw);
  return { raw, config, logger };
}

/**
 * Runs the CLI. Resolves with the exit code for `--check` and usage errors; when serving, it
 * resolves once the gateway listens (the process then lives until a signal).
 */
export async function runCli(
  argv: readonly string[],
  io: CliIo = defaultIo,
): Promise<number | Gateway> {
  const args = parseCliArgs(argv);
  if ('usage' in args) {
    (args.code === 0 ? io.stdout : io.stderr)(args.usage);
    return args.code;
  }
  const logger = createJsonLogger(io.stdout, args.logLevel, { name: 'trellis-gateway' });

  if (args.check) {
    try {
      const { raw } = await loadAndValidate(args.config, io, logger);
      // Building a gateway also checks cross references (auth providers, Redis for rate limits).
      const health = createHealth({ signals: false, exit: false });
      const gateway = createGateway(raw, { logger: silentLogger, health, tracing: false });
      await gateway.close();
      health.close();
      io.stdout(`${args.config}: valid (${gateway.config.routes.length} routes)\n`);
      return 0;
    } catch (err) {
      io.stderr(`${args.config}: invalid config\n${describeError(err)}\n`);
      return 1;
    }
  }

  let loaded: Awaited<ReturnType<typeof loadAndValidate>>;
  try {
    loaded = await loadAndValidate(args.config, io, logger);
  } catch (err) {
    io.stderr(`${args.config}: invalid config\n${describeError(err)}\n`);
    return 1;
  }
  const listen = loaded.config.listen;
  process.title = 'trellis-gateway';
  const health = createHealth({
    signals: ['SIGTERM', 'SIGINT'],
    exit: true,
    drainDelayMs: listen.drainDelayMs,
    shutdownTimeoutMs: listen.closeTimeoutMs,
    logger,
  });
  let gateway: Gateway;
  try {
    gateway = createGateway(loaded.raw, {
      logger,
      health,
      closeTimeoutMs: listen.closeTimeoutMs,
    });
  } catch (err) {
    health.close();
    io.stderr(`${args.config}: invalid config\n${describeError(err)}\n`);
    return 1;
  }
  health.addCleanup(() => gateway.close());
  const port = args.port ?? listen.port;
  const host = args.host ?? listen.host;
  let address: { port: number; host: string; adminPort?: number | undefined };
  try {
    address = await gateway.listen(port, host);
  } catch (err) {
    logger.error({ err, port, host }, 'gateway: cannot listen');
    await gateway.close();
    health.close();
    return 1;
  }
  if (args.pidFile !== undefined) {
    const pidFile = args.pidFile;
    writeFileSync(pidFile, `${process.pid}\n`);
    health.addCleanup(() => {
      try {
        unlinkSync(pidFile);
      } catch {
        // already gone
      }
    });
  }
  logger.info(
    {
      port: address.port,
      host: address.host,
      adminPort: address.adminPort,
      routes: gateway.config.routes.length,
      config: args.config,
    },
    'gateway: listening',
  );

  let reloading = false;
  const reload = async () => {
    if (reloading) return;
    reloading = true;
    try {
      const raw = await loadConfigFile(args.config, io.env);
      gateway.reload(raw);
      const next = gateway.config.listen;
      if (
        (args.port === undefined && next.port !== listen.port) ||
        (args.host === undefined && next.host !== listen.host)
      ) {
        logger.warn(
          { port: next.port, host: next.host },
          'gateway: listen address changes need a restart',
        );
      }
    } catch (err) {
      logger.error(
        { err, config: args.config },
        'gateway: reload failed, keeping the running config',
      );
    } finally {
      reloading = false;
    }
  };
  const onHup = () => void reload();
  process.on('SIGHUP', onHup);
  health.onStateChange((change) => {
    if (change.to === 'draining') process.off('SIGHUP', onHup);
  });
  return gateway;
}
