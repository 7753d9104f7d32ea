/** Shared setup for the edge-stage tests: an echo upstream and an edge test server. */
import { type Logger, silentLogger } from '@trellis/core';
import { createTestClock, type TestClock } from '@trellis/core/testing';
import {
  type EdgeTestServer,
  startEchoUpstream,
  startEdgeTestServer,
} from './edgeTestServer.js';
import {
  createEdge,
  type Edge,
  type EdgeDeps,
  edgeGlobalSchema,
  edgeRouteSchema,
} from '../src/stages/createStages.js';

export interface Harness {
  readonly url: string;
  readonly edge: Edge;
  readonly clock: TestClock;
  close(): Promise<void>;
}

export interface HarnessOptions {
  readonly global?: unknown;
  readonly route?: unknown;
  readonly now?: () => number;
  readonly logger?: Logger;
  readonly upstreamHeaders?: Record<string, string>;
  readonly deps?: Partial<EdgeDeps>;
  readonly clock?: TestClock;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const clock = options.clock ?? createTestClock();
  const edge = createEdge(edgeGlobalSchema.parse(options.global ?? {}), {
    clock,
    logger: options.logger ?? silentLogger,
    now: options.now,
    ...options.deps,
  });
  const upstream: EdgeTestServer = await startEchoUpstream(options.upstreamHeaders);
  const route = { ...edgeRouteSchema.parse(options.route ?? {}), id: 'r1' };
  const server = await startEdgeTestServer({
    accessLog: edge.accessLog,
    stripHeader: edge.identityHeader,
    chain: edge.forRoute(route),
    upstream: upstream.url,
    routeId: 'r1',
    now: () => clock.now(),
  });
  return {
    url: server.url,
    edge,
    clock,
    close: async () => {
      await server.close();
      await upstream.close();
      await edge.close();
    },
  };
}

export interface EchoBody {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
}
