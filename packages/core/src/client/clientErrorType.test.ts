import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AbortedError,
  ConnectError,
  HttpError,
  RequestValidationError,
  ResponseValidationError,
  ShedError,
  ThrottledError,
  TimeoutError,
} from '../errors.js';
import { classifyFault } from '../faults/classifyFault.js';
import { CLIENT_ERROR_TYPES, clientOutcome } from './clientErrorType.js';

const http = (status: number, headers: Record<string, string> = {}) =>
  new HttpError('x', {
    status,
    headers,
    body: undefined,
    retryAfterMs: undefined,
    retryable: false,
  });

describe('clientOutcome', () => {
  it('names thrown errors with one value per kind', () => {
    const cases: [unknown, string, string][] = [
      [new AbortedError('a'), 'aborted', 'caller'],
      [new TimeoutError('t', { timeoutMs: 5, deadline: true }), 'deadline', 'caller'],
      [new TimeoutError('t', { timeoutMs: 5 }), 'timeout', 'upstream'],
      [new RequestValidationError('r', { issues: [] }), 'request_invalid', 'caller'],
      [
        new ResponseValidationError('r', { status: 200, issues: [], body: undefined }),
        'response_invalid',
        'local',
      ],
      [new ConnectError('c', { target: 'x' }), 'connection_error', 'upstream'],
      [http(404), '404', 'caller'],
      [http(429), '429', 'overload'],
      [http(503, { 'x-trellis-shed': 'queue' }), 'shed', 'overload'],
      [http(503), '503', 'upstream'],
      [new ShedError('s', { reason: 'queue', retryAfterMs: 1 }), 'shed', 'overload'],
      [
        new ThrottledError('t', { probability: 0.5, requests: 10, accepts: 2 }),
        'throttled',
        'overload',
      ],
      [new DOMException('stop', 'AbortError'), 'aborted', 'caller'],
      [new TypeError('odd'), '_OTHER', 'upstream'],
      ['not an error', '_OTHER', 'upstream'],
    ];
    for (const [err, type, kind] of cases) {
      expect(clientOutcome(err, 0, false), String(type)).toEqual({ fault: kind, errorType: type });
    }
  });

  it('statuses: success has no error type, shed 503 and 429 are overload', () => {
    expect(clientOutcome(undefined, 200, false)).toEqual({
      fault: undefined,
      errorType: undefined,
    });
    expect(clientOutcome(undefined, 204, true)).toEqual({ fault: undefined, errorType: undefined });
    expect(clientOutcome(undefined, 503, true)).toEqual({ fault: 'overload', errorType: 'shed' });
    expect(clientOutcome(undefined, 503, false)).toEqual({ fault: 'upstream', errorType: '503' });
    expect(clientOutcome(undefined, 429, false)).toEqual({ fault: 'overload', errorType: '429' });
    expect(clientOutcome(undefined, 418, false)).toEqual({ fault: 'caller', errorType: '418' });
  });

  it('every value is non-empty, bounded and agrees with classifyFault', () => {
    const thrown = fc.oneof(
      fc.integer({ min: 100, max: 599 }).map((s) => http(s)),
      fc.integer({ min: 100, max: 599 }).map((s) => http(s, { 'x-trellis-shed': 'x' })),
      fc.constant(new AbortedError('a')),
      fc.constant(new TimeoutError('t', { timeoutMs: 1, deadline: true })),
      fc.constant(new TimeoutError('t', { timeoutMs: 1 })),
      fc.constant(new ConnectError('c', { target: 'x' })),
      // undefined means "nothing was thrown": not a failure.
      fc.anything().filter((v) => v !== undefined),
    );
    fc.assert(
      fc.property(thrown, (err) => {
        const { fault, errorType } = clientOutcome(err, 0, false);
        expect(fault).toBe(classifyFault(err));
        expect(errorType).toMatch(/^([1-5]\d\d|[a-z_]+|_OTHER)$/);
        if (errorType !== undefined && errorType in CLIENT_ERROR_TYPES) {
          expect(CLIENT_ERROR_TYPES[errorType as keyof typeof CLIENT_ERROR_TYPES]).toBe(fault);
        }
      }),
      { seed: 4242, numRuns: 300 },
    );
  });
});
