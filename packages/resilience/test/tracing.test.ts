import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
} from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { circuitBreaker, retry } from '../src/index.js';

describe('OpenTelemetry span events (real SDK)', () => {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });

  beforeAll(() => {
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  });
  afterAll(async () => {
    await provider.shutdown();
    trace.disable();
    context.disable();
  });

  it('adds events for retries and breaker state changes to the active span', async () => {
    const tracer = trace.getTracer('test');
    const breaker = circuitBreaker({ consecutiveFailures: 1, name: 'inventory' });
    const policy = retry({ maxAttempts: 2, backoff: { initialMs: 0, maxMs: 0 } });
    await tracer.startActiveSpan('call', async (span) => {
      await policy
        .execute(() => breaker.execute(() => Promise.reject(new Error('down'))))
        .catch(() => {});
      span.end();
    });
    const [span] = exporter.getFinishedSpans();
    const events = span?.events.map((e) => e.name);
    // The first failure opens the breaker, then the retry policy decides to retry.
    expect(events).toEqual(['trellis.circuit.state_change', 'trellis.retry']);
    expect(span?.events[1]?.attributes).toMatchObject({ 'trellis.retry.attempt': 2 });
    expect(span?.events[0]?.attributes).toMatchObject({
      'trellis.circuit.name': 'inventory',
      'trellis.circuit.to': 'open',
    });
  });

  it('is a no-op without an active span', async () => {
    const policy = retry({ maxAttempts: 2, backoff: { initialMs: 0, maxMs: 0 } });
    await expect(policy.execute(() => Promise.reject(new Error('x')))).rejects.toThrow('x');
  });
});
