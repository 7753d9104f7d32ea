import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../errors.js';
import {
  createDurationHistogram,
  createMetrics,
  HTTP_DURATION_BUCKETS,
  normalizeMethod,
} from './createMetrics.js';

describe('createMetrics', () => {
  it('records requests by method, route template and status, with OTel buckets', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.recordServerRequest({
      method: 'get',
      route: '/items/:id',
      status: 200,
      durationSeconds: 0.02,
    });
    metrics.observeServerRequest('GET', undefined, 404, 0.001);
    metrics.observeServerRequest('BREW', '/coffee', 418, 0.3);
    const text = await metrics.text();
    expect(text).toContain(
      'http_server_request_duration_seconds_bucket{le="0.025",http_request_method="GET",http_route="/items/:id",http_response_status_code="200"} 1',
    );
    expect(text).toContain('http_route="unmatched",http_response_status_code="404"');
    expect(text).toContain('http_request_method="_OTHER",http_route="/coffee"');
    for (const b of HTTP_DURATION_BUCKETS) expect(text).toContain(`le="${b}"`);
    expect(metrics.contentType).toMatch(/^text\/plain/);
    metrics.close();
  });

  it('never uses the global registry and includes default metrics unless opted out', async () => {
    const { register } = await import('prom-client');
    const before = register.getMetricsAsArray().length;
    const metrics = createMetrics({ prefix: 'app_' });
    expect(metrics.registry).not.toBe(register);
    expect(register.getMetricsAsArray().length).toBe(before);
    expect(await metrics.text()).toContain('app_process_cpu_seconds_total');
    expect(await metrics.text()).toContain('app_http_server_request_duration_seconds');
    metrics.close();
    expect((await metrics.registry.metrics()).trim()).toBe('');
  });

  it('can be created twice on one registry without "already registered"', async () => {
    const registry = new Registry();
    const a = createMetrics({ registry });
    const b = createMetrics({ registry });
    a.observeServerRequest('GET', '/a', 200, 0.01);
    b.observeServerRequest('GET', '/a', 200, 0.01);
    expect(await registry.metrics()).toMatch(
      /http_server_request_duration_seconds_count\{[^}]*http_route="\/a"[^}]*\} 2/,
    );
    b.close();
    a.close();
    expect(registry.getSingleMetric('http_server_request_duration_seconds')).toBeUndefined();
  });

  it('refuses to reuse the duration histogram with other buckets, naming them', () => {
    const registry = new Registry();
    const a = createMetrics({ registry, defaultMetrics: false, buckets: [0.5, 0.1] });
    // The same bounds in another order are the same histogram.
    createMetrics({ registry, defaultMetrics: false, buckets: [0.1, 0.5] }).close();
    expect(() => createMetrics({ registry, defaultMetrics: false })).toThrow(ConfigError);
    expect(() => createMetrics({ registry, defaultMetrics: false, buckets: [0.1] })).toThrow(
      /http_server_request_duration_seconds with other buckets \(0\.1, 0\.5\)/,
    );
    a.close();
  });

  it('counts active requests', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    metrics.requestStarted();
    metrics.requestStarted();
    metrics.requestEnded();
    expect(await metrics.text()).toContain('http_server_active_requests 1');
    metrics.close();
  });

  it('rejects bad options naming the field', () => {
    expect(() => createMetrics({ prefix: '9bad' })).toThrow(ConfigError);
    expect(() => createMetrics({ prefix: '9bad' })).toThrow(/prefix/);
    expect(() => createMetrics({ buckets: [] })).toThrow(/buckets/);
  });

  it('normalizes methods the OpenTelemetry way', () => {
    expect(normalizeMethod('get')).toBe('GET');
    expect(normalizeMethod('PATCH')).toBe('PATCH');
    expect(normalizeMethod('FOO')).toBe('_OTHER');
    expect(normalizeMethod(undefined)).toBe('_OTHER');
  });

  it('createDurationHistogram: three labels, cumulative buckets, reused by name, bad input named', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const opts = {
      name: 'gw_upstream_seconds',
      help: 'Upstream calls.',
      labelNames: ['route', 'upstream', 'status'] as const,
      buckets: [0.01, 0.1],
    };
    const h = createDurationHistogram(metrics, opts);
    expect(createDurationHistogram(metrics, opts)).toBe(h);
    h.observe('/orders', '10.0.0.7:8080', 200, 0.005);
    h.observe('/orders', '10.0.0.7:8080', 200, 0.05);
    h.observe('/orders', '10.0.0.8:8080', 0, 3);
    h.observe('/orders', '10.0.0.8:8080', 0, Number.NaN); // dropped
    const text = await metrics.text();
    const series = 'route="/orders",upstream="10.0.0.7:8080",status="200"';
    expect(text).toContain(`gw_upstream_seconds_bucket{le="0.01",${series}} 1`);
    expect(text).toContain(`gw_upstream_seconds_bucket{le="0.1",${series}} 2`);
    expect(text).toContain(`gw_upstream_seconds_bucket{le="+Inf",${series}} 2`);
    expect(text).toContain(`gw_upstream_seconds_sum{${series}} 0.055`);
    expect(text).toContain(
      'gw_upstream_seconds_count{route="/orders",upstream="10.0.0.8:8080",status="0"} 1',
    );
    expect(text).toContain('# TYPE gw_upstream_seconds histogram');

    expect(() =>
      createDurationHistogram(metrics, { ...opts, labelNames: ['route', 'le', 'status'] }),
    ).toThrow(/labelNames\[1\]: is reserved/);
    expect(() =>
      createDurationHistogram(metrics, { ...opts, name: 'http_server_active_requests' }),
    ).toThrow(ConfigError);
    expect(() =>
      createDurationHistogram(metrics, { ...opts, labelNames: ['route', 'instance', 'status'] }),
    ).toThrow(/with other labels/);
    expect(() => createDurationHistogram(metrics, { ...opts, buckets: [0.01, 0.5] })).toThrow(
      /gw_upstream_seconds with other buckets \(0\.01, 0\.1\)/,
    );
    expect(() => createDurationHistogram(metrics, { ...opts, buckets: undefined })).toThrow(
      ConfigError,
    );
    metrics.close();
  });
});
