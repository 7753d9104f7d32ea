import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { hasEngine, promtoolCheck } from '../../../../testing/engines.js';
import { createMetrics } from '../metrics/index.js';
import { CLIENT_DURATION_METRIC, ClientMetrics, HTTP_DURATION_BUCKETS } from './ClientMetrics.js';

describe('ClientMetrics', () => {
  it('registers one histogram with the OpenTelemetry buckets and labels', async () => {
    const registry = new Registry();
    const m = new ClientMetrics(registry);
    m.observe('GET', 'api.internal', 8080, 200, undefined, 0.02);
    m.observe('GET', 'api.internal', 8080, 200, undefined, 0.2);
    m.observe('POST', 'api.internal', 8080, 0, 'connection_error', 0.001);
    const metric = registry.getSingleMetric(CLIENT_DURATION_METRIC);
    expect(metric).toBeInstanceOf(Histogram);
    const text = await registry.metrics();
    for (const le of HTTP_DURATION_BUCKETS) expect(text).toContain(`le="${le}"`);
    // No label is ever set to "": Prometheus would take it for an absent label.
    expect(text).not.toContain('=""');
    expect(text).toContain(
      'http_client_request_duration_seconds_count{http_request_method="GET",server_address="api.internal",server_port="8080",http_response_status_code="200"} 2',
    );
    expect(text).toContain(
      'http_client_request_duration_seconds_bucket{le="0.005",http_request_method="POST",server_address="api.internal",server_port="8080",error_type="connection_error"} 1',
    );
  });

  it('reuses the histogram already on the registry instead of throwing', async () => {
    const registry = new Registry();
    const a = new ClientMetrics(registry);
    const b = new ClientMetrics(registry);
    a.observe('GET', 'h', 1, 200, undefined, 0.01);
    b.observe('GET', 'h', 1, 200, undefined, 0.01);
    expect(registry.getMetricsAsArray()).toHaveLength(1);
    expect(await registry.metrics()).toContain('http_response_status_code="200"} 2');
  });

  it('works on the registry of createMetrics()', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    new ClientMetrics(metrics.registry).observe('GET', 'h', 1, 503, '503', 0.3);
    expect(await metrics.text()).toContain('http_client_request_duration_seconds_sum');
  });

  it.skipIf(!hasEngine('promtool'))('passes promtool check metrics', async () => {
    const registry = new Registry();
    const m = new ClientMetrics(registry);
    m.observe('GET', '10.0.0.7', 8080, 200, undefined, 0.012);
    m.observe('GET', '10.0.0.7', 8080, 0, 'timeout', 10);
    m.observe('GET', '10.0.0.7', 8080, 503, 'shed', 0.001);
    const result = promtoolCheck(await registry.metrics());
    expect(result.output).toBe('');
    expect(result.ok).toBe(true);
  });
});
