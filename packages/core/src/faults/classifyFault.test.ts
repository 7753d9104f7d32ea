import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  ConfigError,
  ConnectError,
  HttpError,
  NoInstanceError,
  RequestValidationError,
  ResponseValidationError,
  ShedError,
  TimeoutError,
} from '../errors.js';
import { problem } from '../problem/Problem.js';
import { classifyFault, classifyStatus, countsAgainstUpstream } from './classifyFault.js';
import { asError, describeThrown } from './describeThrown.js';

const http = (
  status: number,
  extra: Partial<{ problem: ReturnType<typeof problem>; headers: Record<string, string> }> = {},
) =>
  new HttpError(`status ${status}`, {
    status,
    headers: extra.headers ?? {},
    body: undefined,
    retryAfterMs: undefined,
    problem: extra.problem,
  });

describe('classifyFault', () => {
  it('counts only upstream faults against an upstream', () => {
    expect(classifyFault(new ConnectError('refused', { target: 'x' }))).toBe('upstream');
    expect(classifyFault(new TimeoutError('slow', { timeoutMs: 5 }))).toBe('upstream');
    expect(classifyFault(new TimeoutError('deadline', { timeoutMs: 5, deadline: true }))).toBe(
      'caller',
    );
    expect(classifyFault(new AbortedError('gone'))).toBe('caller');
    expect(classifyFault(new RequestValidationError('bad', { issues: [] }))).toBe('caller');
    expect(
      classifyFault(new ResponseValidationError('bad', { status: 200, issues: [], body: 1 })),
    ).toBe('local');
    expect(classifyFault(new NoInstanceError('none', { service: 's' }))).toBe('local');
    expect(classifyFault(new ConfigError('bad', { component: 'x', issues: [] }))).toBe('local');
    expect(classifyFault(new ShedError('busy', { reason: 'limit', retryAfterMs: 1 }))).toBe(
      'overload',
    );
  });

  it('reads an HttpError by status, problem code and shed header', () => {
    expect(classifyFault(http(500))).toBe('upstream');
    expect(classifyFault(http(503))).toBe('upstream');
    expect(
      classifyFault(http(503, { problem: problem({ status: 503, code: 'TRELLIS_SHED' }) })),
    ).toBe('overload');
    expect(classifyFault(http(503, { headers: { 'x-trellis-shed': 'limit' } }))).toBe('overload');
    expect(classifyFault(http(429))).toBe('overload');
    expect(classifyFault(http(404))).toBe('caller');
    expect(classifyFault(http(413))).toBe('caller');
  });

  it("reads undici's and the platform's own errors by code and name", () => {
    const withCode = (code: string) => Object.assign(new Error(code), { code });
    expect(classifyFault(withCode('UND_ERR_INVALID_ARG'))).toBe('caller');
    expect(classifyFault(withCode('UND_ERR_NOT_SUPPORTED'))).toBe('caller');
    expect(classifyFault(withCode('UND_ERR_ABORTED'))).toBe('caller');
    expect(classifyFault(new DOMException('x', 'AbortError'))).toBe('caller');
    expect(classifyFault(withCode('ECONNREFUSED'))).toBe('upstream');
    expect(classifyFault(withCode('UND_ERR_SOCKET'))).toBe('upstream');
    expect(classifyFault(new Error('boom'))).toBe('upstream');
  });

  it('classifies any thrown value without throwing', () => {
    fc.assert(
      fc.property(fc.anything({ withNullPrototype: true, withObjectString: true }), (value) => {
        expect(['upstream', 'overload', 'caller', 'local']).toContain(classifyFault(value));
        expect(typeof describeThrown(value)).toBe('string');
        expect(asError(value)).toBeInstanceOf(Error);
      }),
      { seed: 1807, numRuns: 1_000 },
    );
    expect(describeThrown(Object.create(null))).toBe('a non-Error object');
    expect(describeThrown(Symbol('s'))).toBe('Symbol(s)');
    const hostile = new Proxy(
      {},
      {
        get() {
          throw new Error('trap');
        },
        getPrototypeOf() {
          throw new Error('trap');
        },
      },
    );
    expect(describeThrown(hostile)).toBe('an unprintable value');
  });
});

describe('classifyStatus', () => {
  it('maps statuses: success, caller, overload, upstream', () => {
    expect(classifyStatus(200)).toBeUndefined();
    expect(classifyStatus(304)).toBeUndefined();
    expect(classifyStatus(400)).toBe('caller');
    expect(classifyStatus(429)).toBe('overload');
    expect(classifyStatus(503, { shed: true })).toBe('overload');
    expect(classifyStatus(502)).toBe('upstream');
    expect(classifyStatus(501, { isFailureStatus: (s) => s >= 502 })).toBe('caller');
    expect(countsAgainstUpstream('upstream')).toBe(true);
    expect(countsAgainstUpstream('overload')).toBe(false);
    expect(countsAgainstUpstream(undefined)).toBe(false);
  });
});
