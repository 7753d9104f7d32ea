// Runs the examples of the outbox README and docs/consistency.md as programs (tsx, sources via
// tsconfig paths), so the copy-paste examples are known to work, not just to type-check.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { runTs, tsBlocks } from '../../../testing/markdown.js';

const readme = tsBlocks(join(import.meta.dirname, '..', 'README.md')).map((b) => b.code);
const docs = join(import.meta.dirname, '..', '..', '..', 'docs', 'consistency.md');
const section = (name: string) => tsBlocks(docs, { section: name }).map((b) => b.code);

describe('outbox examples', () => {
  it('README: the PGlite example retries with the same Idempotency-Key', () => {
    const r = runTs(readme[0] ?? '', 'outbox-readme.ts');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('2 true\n');
  }, 60_000);

  it('docs/consistency.md: idempotency() replays the repeat', () => {
    const r = runTs(section('Idempotent writes on the server')[0] ?? '', 'consistency-express.ts');
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe("201 { id: 1, item: 'lamp' }\n201 true { id: 1, item: 'lamp' }\n");
  }, 60_000);

  it('docs/consistency.md: the outbox example delivers with the message id as key', () => {
    const r = runTs(section('The transactional outbox')[0] ?? '', 'consistency-outbox.ts');
    expect(r.stderr).toBe('');
    // jsonb keeps object keys in its own order.
    expect(r.stdout).toMatch(
      /^order-placed o-1 \{ item: 'lamp', orderId: 'o-1' \} [0-9a-f-]{36}\n$/,
    );
  }, 60_000);

  it('docs/consistency.md: end to end, every placed order is reserved once', () => {
    const r = runTs(
      section('End to end: an order placed, stock reserved once')[0] ?? '',
      'consistency-e2e.ts',
    );
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('placed 3, reserved 3\n');
  }, 60_000);
});
