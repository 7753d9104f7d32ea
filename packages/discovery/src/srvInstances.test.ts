import { describe, expect, it } from 'vitest';
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
