import type { ServerResponse } from 'node:http';
import type { SseEvent } from '../../contract/stream.js';
import { describeThrown } from '../../faults/describeThrown.js';
import type { Contract, ServedEndpoint } from './compileContract.js';

/** Formats one SSE event: `id`, `event`, `retry`, then `data` (one line per line of JSON). */
export function formatSse(item: SseEvent<unknown>): string {
  let out = '';
  if (item.id !== undefined) out += `id: ${oneLine(String(item.id))}\n`;
  if (item.event !== undefined) out += `event: ${oneLine(String(item.event))}\n`;
  if (item.retry !== undefined) out += `retry: ${Math.max(0, Math.floor(Number(item.retry)))}\n`;
  // JSON.stringify never emits a raw newline, so the data is one line.
  out += `data: ${JSON.stringify(item.data) ?? 'null'}\n\n`;
  return out;
}

const oneLine = (s: string) => s.replace(/[\r\n\0]/g, '');

/**
 * Writes a handler's async iterable as SSE or NDJSON on a node response: headers first, then
 * each validated item, waiting for `drain` when the socket is full (backpressure). When the
 * client goes away the loop stops and the iterable's `return()` runs (a generator's `finally`).
 * An item that breaks the contract is logged and the response is cut short (the client sees
 * a truncated stream, never an invalid item). Resolves when done; never rejects.
 */
export async function writeStream(
  contract: Contract,
  ep: ServedEndpoint,
  iterable: AsyncIterable<unknown>,
  res: ServerResponse,
  extraHeaders: Record<string, string | number | readonly string[]> | undefined,
): Promise<void> {
  const stream = ep.stream as NonNullable<ServedEndpoint['stream']>;
  const sse = stream.stream === 'sse';
  res.statusCode = 200;
  if (extraHeaders) for (const [k, v] of Object.entries(extraHeaders)) res.setHeader(k, v);
  res.setHeader('content-type', sse ? 'text/event-stream; charset=utf-8' : 'application/x-ndjson');
  res.setHeader('cache-control', 'no-store');
  res.setHeader('x-accel-buffering', 'no');
  res.flushHeaders();
  const head = res.req?.method === 'HEAD';
  let closed = false;
  let wake: (() => void) | undefined;
  const onClose = () => {
    closed = true;
    wake?.();
  };
  const onDrain = () => wake?.();
  res.on('close', onClose);
  res.on('drain', onDrain);
  const it = iterable[Symbol.asyncIterator]();
  let finished = false;
  try {
    while (!closed && !head) {
      const r = await it.next();
      if (r.done) {
        finished = true;
        break;
      }
      if (closed) break;
      if (contract.checkItem(ep, r.value) !== undefined) {
        // Send what was valid, then cut the response short (no final chunk): the client sees
        // a broken stream, never the invalid item.
        res.socket?.end();
        closed = true;
        return;
      }
      const chunk = sse ? formatSse(r.value as SseEvent<unknown>) : `${JSON.stringify(r.value)}\n`;
      // One write per item. (Corking items of one tick into one write broke streams on Node 24:
      // the corked writes never reached the socket.)
      if (!res.write(chunk) && !closed) {
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    }
    if (!closed) res.end();
  } catch (err) {
    contract.logger.error(
      { endpoint: ep.name, err: describeThrown(err) },
      `serve: ${ep.name}: the stream failed: ${describeThrown(err)}`,
    );
    res.destroy();
    finished = true;
  } finally {
    res.off('close', onClose);
    res.off('drain', onDrain);
    if (!finished) {
      try {
        await it.return?.();
      } catch {
        // The iterable's own cleanup failed; nothing more to tell the client.
      }
    }
  }
}
