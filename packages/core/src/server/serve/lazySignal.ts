import type { ServerResponse } from 'node:http';

/**
 * A handler's `signal`, made only when the handler reads it (most never do): aborted when the
 * response closes before it finished, i.e. the client went away.
 */
export function lazySignal(res: ServerResponse): () => AbortSignal {
  let controller: AbortController | undefined;
  return () => {
    if (controller !== undefined) return controller.signal;
    const c = new AbortController();
    controller = c;
    if (res.closed) {
      if (!res.writableFinished) c.abort(new Error('the client went away'));
    } else {
      res.once('close', () => {
        if (!res.writableFinished) c.abort(new Error('the client went away'));
      });
    }
    return c.signal;
  };
}
