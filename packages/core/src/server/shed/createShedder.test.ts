import { IncomingMessage, ServerResponse } from 'node:http';
import { Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createTestClock } from '../../testing/index.js';
import type { AdmissionLimiter } from './AdmissionLimiter.js';
import { createShedder } from './createShedder.js';

function exchange(headers: Record<string, string> = {}) {
  const req = new IncomingMessage(new Socket());
  req.url = '/work';
  req.method = 'GET';
  Object.assign(req.headers, headers);
  return { req, res: new ServerResponse(req) };
}

describe('createShedder', () => {
  it('takes no permit for a request whose caller has already gone (no leaked slot)', () => {
    let inFlight = 0;
    const limit: AdmissionLimiter = {
      tryAcquire: () => {
        inFlight++;
        return { release: () => void inFlight-- };
      },
    };
    const shed = createShedder({ limit, clock: createTestClock() });
    const gone = exchange();
    gone.res.destroy();
    expect(shed.admit(gone.req, gone.res, '/work')).toBeUndefined();
    expect(inFlight).toBe(0);
    const live = exchange();
    expect(shed.admit(live.req, live.res, '/work')).toBeUndefined();
    expect(inFlight).toBe(1);
    live.res.emit('close');
    expect(inFlight).toBe(0);
  });

  it('answers a spent deadline with the shed problem and headers', () => {
    const shed = createShedder({ clock: createTestClock() });
    const { req, res } = exchange({ 'x-trellis-deadline-ms': '0' });
    const answer = shed.admit(req, res, '/work');
    expect(answer?.reason).toBe('deadline');
    expect(answer?.problem).toMatchObject({ status: 503, code: 'TRELLIS_SHED' });
    expect(answer?.headers).toEqual({ 'retry-after': 1, 'x-trellis-shed': 'deadline' });
  });
});
