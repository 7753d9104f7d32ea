/** The result file every bench entry point writes to bench/results/<area>.json. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  /** The peer (or baseline) this row is compared with. */
  peer?: string;
  /** Oriented so that > 1 favours Trellis; say which way in `name` or `unit`. */
  ratio?: number;
  /** Human-readable target, e.g. "≥ 1.5×". */
  target?: string;
  pass?: boolean;
  /** Rows with a `chart` group are drawn in bench/results/chart.svg (value per row). */
  chart?: string;
}

export interface BenchResult {
  area: string;
  title?: string;
  setup?: string;
  command?: string;
  date?: string;
  rows: BenchRow[];
  notes?: string[];
}

/**
 * Each area's entry point, in the order `npm run bench` runs them. An area is a folder
 * bench/<area>/ whose entry point is main.ts; the other files there are the child processes and
 * helpers it uses. `server-instructions` is the server folder's second entry point.
 */
export const benchEntries: Readonly<Record<string, string>> = {
  resilience: 'resilience/main.ts',
  discovery: 'discovery/main.ts',
  client: 'client/main.ts',
  server: 'server/main.ts',
  'server-instructions': 'server/instructions.ts',
  gateway: 'gateway/main.ts',
  'gateway-instructions': 'gateway/instructions.ts',
};

/** `bench/<folder>/<entry>.ts` of an area (a result area such as `server-v24` -> its base). */
export function entryOf(area: string): string {
  return `bench/${benchEntries[area] ?? `${area}/main.ts`}`;
}

export function writeResult(result: BenchResult): void {
  const dir = join(import.meta.dirname, '..', 'results');
  mkdirSync(dir, { recursive: true });
  const full = {
    date: new Date().toISOString(),
    command: `npx tsx ${entryOf(result.area)}`,
    ...result,
  };
  writeFileSync(join(dir, `${result.area}.json`), `${JSON.stringify(full, null, 2)}\n`);
}

/** The median of a non-empty list (the mean of the middle two for an even count). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
