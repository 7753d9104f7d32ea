/**
 * Shared setup for the stage tests: an echo upstream and a real gateway (`createGateway`) with
 * one route `r1` on `/` carrying the stage settings under test.
 */
import type { Logger } from '@trellis/core';
import { createTestClock, type TestClock } from '@trellis/core/testing';
import { createGateway, type Gateway } from '../src/index.js';
import { type EchoUpstream, startEchoUpstream } from './echoUpstream.js';

export interface Harness {
  readonly url: string;
  readonly gateway: Gateway;
  readonly clock: TestClock;
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Gateway-wide settings (auth providers, redis, accessLog, trustedProxies...). */
  readonly global?: Record<string, unknown>;
  /** Stage settings of the route (cors, auth, rateLimit, headers). */
  readonly route?: Record<string, unknown>;
  readonly logger?: Logger;
  /** Headers the echo upstream adds to every answer. */
  readonly upstreamHeaders?: Record<string, string>;
  readonly clock?: TestClock;
  /** Wall-clock time for JWT `exp`/`nbf`. */
  readonly now?: () => number;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const clock = options.clock ?? createTestClock();
  const upstream: EchoUpstream = await startEchoUpstream(options.upstreamHeaders);
  const gateway = createGateway(
    {
      ...options.global,
      routes: [{ name: 'r1', path: '/', upstream: upstream.url, retry: false, ...options.route }],
    },
    { clock, logger: options.logger, now: options.now },
  );
  const { port } = await gateway.listen(0, '127.0.0.1');
  return {
    url: `http://127.0.0.1:${port}`,
    gateway,
    clock,
    close: async () => {
      await gateway.close();
      await upstream.close();
    },
  };
}

export interface EchoBody {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}
