/**
 * The three probes (liveness, readiness, the full report) over the service's checks, as
 * `application/health+json` bodies (IETF draft-inadarei-api-health-check).
 */
import type { CheckOutcome, HealthCheck, HealthStatus } from './HealthCheck.js';
import type { HealthState } from './ShutdownSequence.js';

/** An `application/health+json` body (IETF draft-inadarei-api-health-check). */
export interface HealthBody {
  status: HealthStatus;
  version?: string;
  releaseId?: string;
  serviceId?: string;
  description?: string;
  output?: string;
  notes?: string[];
  checks?: Record<string, CheckOutcome[]>;
}

/** A probe answer: the IETF body and the HTTP status to send it with (200 pass/warn, 503 fail). */
export interface HealthReport {
  status: HealthStatus;
  httpStatus: 200 | 503;
  body: HealthBody;
}

function worst(a: HealthStatus, b: HealthStatus): HealthStatus {
  if (a === 'fail' || b === 'fail') return 'fail';
  if (a === 'warn' || b === 'warn') return 'warn';
  return 'pass';
}

const byCriticality = (c: HealthCheck): HealthStatus => (c.critical ? 'fail' : 'warn');

/** Runs the checks for each probe; reads (and, for startup, moves) the service's state. */
export class HealthProbes {
  readonly #startup: readonly HealthCheck[];
  readonly #readiness: readonly HealthCheck[];
  readonly #liveness: readonly HealthCheck[];
  readonly #meta: Omit<HealthBody, 'status'>;
  readonly #state: () => HealthState;
  readonly #setState: (to: HealthState) => void;

  constructor(
    checks: readonly HealthCheck[],
    meta: Omit<HealthBody, 'status'>,
    state: () => HealthState,
    setState: (to: HealthState) => void,
  ) {
    this.#startup = checks.filter((c) => c.startup);
    this.#readiness = checks.filter((c) => !c.startup);
    this.#liveness = checks.filter((c) => c.liveness);
    this.#meta = meta;
    this.#state = state;
    this.#setState = setState;
  }

  /** True when there are startup checks (the service starts in `starting`). */
  get hasStartupChecks(): boolean {
    return this.#startup.length > 0;
  }

  /** Readiness: fails while starting, while shutting down, or when a critical check fails. */
  async ready(): Promise<HealthReport> {
    if (this.#shuttingDown()) return this.#toReport('fail', undefined, this.#stateOutput());
    const started = await this.#runStartup();
    if (this.#state() === 'starting') return this.#toReport('fail', started, 'starting');
    const result = await evaluate(this.#readiness, byCriticality);
    if (this.#shuttingDown()) return this.#toReport('fail', result.checks, this.#stateOutput());
    return this.#toReport(result.status, result.checks);
  }

  /** Every check, with details; fails while starting or shutting down. */
  async report(): Promise<HealthReport> {
    const started = await this.#runStartup();
    const result = await evaluate(this.#readiness, byCriticality);
    const all: Record<string, CheckOutcome[]> = { ...result.checks };
    for (const c of this.#startup) {
      const last = c.last;
      if (last !== undefined && started?.[c.key] === undefined) all[c.key] = [last];
    }
    if (started) Object.assign(all, started);
    if (this.#shuttingDown()) return this.#toReport('fail', all, this.#stateOutput());
    if (this.#state() === 'starting') return this.#toReport('fail', all, 'starting');
    return this.#toReport(result.status, all);
  }

  /** Liveness: passes unless a `liveness` check fails. Never fails because of shutdown. */
  async live(): Promise<HealthReport> {
    const result = await evaluate(this.#liveness, byCriticality);
    return this.#toReport(result.status, result.checks);
  }

  #shuttingDown(): boolean {
    const state = this.#state();
    return state === 'draining' || state === 'stopping' || state === 'stopped';
  }

  #stateOutput(): string {
    return `shutting down (${this.#state()})`;
  }

  /** Runs pending startup checks; moves to `ready` once all passed. */
  async #runStartup(): Promise<Record<string, CheckOutcome[]> | undefined> {
    if (this.#state() !== 'starting') return undefined;
    const pending = this.#startup.filter((c) => !c.passedOnce);
    const result = await evaluate(pending, () => 'fail');
    if (this.#state() === 'starting' && this.#startup.every((c) => c.passedOnce)) {
      this.#setState('ready');
    }
    return result.checks;
  }

  #toReport(
    status: HealthStatus,
    checksOut: Record<string, CheckOutcome[]> | undefined,
    output?: string,
  ): HealthReport {
    const body: HealthBody = { status, ...this.#meta };
    if (output !== undefined) body.output = output;
    if (checksOut !== undefined && Object.keys(checksOut).length > 0) body.checks = checksOut;
    return { status, httpStatus: status === 'fail' ? 503 : 200, body };
  }
}

async function evaluate(
  list: readonly HealthCheck[],
  failStatus: (c: HealthCheck) => HealthStatus,
): Promise<{ status: HealthStatus; checks: Record<string, CheckOutcome[]> }> {
  const outcomes = await Promise.all(list.map((c) => c.run()));
  let status: HealthStatus = 'pass';
  const out: Record<string, CheckOutcome[]> = {};
  for (let i = 0; i < list.length; i++) {
    const check = list[i] as HealthCheck;
    const outcome = outcomes[i] as CheckOutcome;
    const entries = out[check.key];
    if (entries === undefined) out[check.key] = [outcome];
    else entries.push(outcome);
    status = worst(status, outcome.status === 'fail' ? failStatus(check) : outcome.status);
  }
  return { status, checks: out };
}
