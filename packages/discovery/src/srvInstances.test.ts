import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { instanceUrlProblem } from './instances.js';
import { srvInstances } from './srvInstances.js';

const srv = (
  name: string,
  port: number,
  priority: number,
  weight: number,
  addresses = ['10.0.0.1'],
) => ({
  name,
  port,
  priority,
  weight,
  addresses,
});

describe('srvInstances (RFC 2782)', () => {
  it('keeps only the lowest priority that has reachable targets, weights within it', () => {
    const list = srvInstances(
      [
        srv('b.test', 81, 10, 10, ['10.0.0.2']),
        srv('a.test', 80, 10, 30, ['10.0.0.1']),
        srv('c.test', 82, 20, 100, ['10.0.0.3']),
      ],
      'http',
      'lowest',
    );
    expect(list.map((i) => [i.id, i.weight])).toEqual([
      ['10.0.0.1:80', 30],
      ['10.0.0.2:81', 10],
    ]);
    expect(list[0]!.metadata).toEqual({ target: 'a.test', priority: '10', weight: '30' });
  });

  it('falls back to the next priority when the lowest has no usable target', () => {
    const list = srvInstances(
      [
        srv('.', 80, 0, 1, []),
        srv('down.test', 80, 0, 1, []),
        srv('c.test', 82, 5, 1, ['10.0.0.3']),
      ],
      'https',
      'lowest',
    );
    expect(list).toEqual([
      {
        id: '10.0.0.3:82',
        url: 'https://10.0.0.3:82',
        weight: 1,
        metadata: { target: 'c.test', priority: '5', weight: '1' },
      },
    ]);
  });

  it('treats target "." as unavailable', () => {
    expect(srvInstances([srv('.', 80, 0, 0, ['10.0.0.1'])], 'http', 'lowest')).toEqual([]);
  });

  it('gives weight 0 a tiny share next to positive weights, and equal shares when all are 0', () => {
    const mixed = srvInstances(
      [srv('a', 80, 0, 0, ['10.0.0.1']), srv('b', 80, 0, 50, ['10.0.0.2'])],
      'http',
      'lowest',
    );
    expect(mixed.map((i) => i.weight)).toEqual([50, 0.5]);
    const zeros = srvInstances(
      [srv('a', 80, 0, 0, ['10.0.0.1']), srv('b', 80, 0, 0, ['10.0.0.2'])],
      'http',
      'lowest',
    );
    expect(zeros.map((i) => i.weight)).toEqual([1, 1]);
  });

  it("keeps every priority, lowest first, with priorities: 'all'", () => {
    const list = srvInstances(
      [srv('c', 82, 20, 1, ['10.0.0.3']), srv('a', 80, 10, 1, ['::1'])],
      'http',
      'all',
    );
    expect(list.map((i) => i.id)).toEqual(['[::1]:80', '10.0.0.3:82']);
  });
});

describe('srvInstances under any SRV answer (issue 18 item 7)', () => {
  it('skips port 0 and serves the lower-priority backup', () => {
    const list = srvInstances(
      [srv('a.test', 0, 0, 10, ['10.0.0.1']), srv('b.test', 8081, 10, 5, ['10.0.0.2'])],
      'http',
      'lowest',
    );
    expect(list.map((i) => i.url)).toEqual(['http://10.0.0.2:8081']);
  });

  it('property: every served instance has an http(s) URL with a port in 1..65535', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            name: fc.oneof(fc.constant('.'), fc.constant(''), fc.domain()),
            port: fc.oneof(fc.integer({ min: 0, max: 65_535 }), fc.constant(0)),
            priority: fc.integer({ min: 0, max: 65_535 }),
            weight: fc.integer({ min: 0, max: 65_535 }),
            addresses: fc.array(fc.oneof(fc.ipV4(), fc.ipV6()), { maxLength: 3 }),
          }),
          { maxLength: 12 },
        ),
        fc.constantFrom('http' as const, 'https' as const),
        fc.constantFrom('lowest' as const, 'all' as const),
        (records, scheme, priorities) => {
          for (const inst of srvInstances(records, scheme, priorities)) {
            expect(instanceUrlProblem(inst.url)).toBeUndefined();
            const port = Number(new URL(inst.url).port);
            expect(port).toBeGreaterThanOrEqual(1);
            expect(port).toBeLessThanOrEqual(65_535);
            expect(inst.weight).toBeGreaterThan(0);
          }
          const usable = records.filter(
            (r) => r.port > 0 && r.name !== '.' && r.name !== '' && r.addresses.length > 0,
          );
          if (usable.length > 0)
            expect(srvInstances(records, scheme, priorities).length).toBeGreaterThan(0);
        },
      ),
      { seed: 1808, numRuns: 500 },
    );
  });
});
