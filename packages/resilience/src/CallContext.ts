/**
 * The `PolicyContext` every Trellis policy hands to the function it runs, plus the small
 * helpers the policies share. Internal: not exported from the package.
 *
 * Policies pass a `CallContext` on as the `opts` of the next policy (pipeline does), so a policy
 * that changes neither the signal nor the attempt forwards the very same object: no allocation
 * and no `AbortController` (which costs about 2 µs in Node 20) on the success path.
 */
import { AbortedError, type ExecuteOptions, type PolicyContext } from '@trellis/core';

/** A signal that never aborts: the default when the caller passes none. */
export const neverSignal: AbortSignal = new AbortController().signal;

/** Base of the contexts Trellis policies create; any of them may be forwarded as `opts`. */
export abstract class BaseContext implements PolicyContext {
  abstract readonly signal: AbortSignal;
  abstract readonly attempt: number;

  /** `signal.aborted`, without creating a lazily made signal. */
  isAborted(): boolean {
    return this.signal.aborted;
  }
}

export class CallContext extends BaseContext {
  constructor(
    readonly signal: AbortSignal,
    readonly attempt: number,
  ) {
    super();
  }
}

const rootContext = new CallContext(neverSignal, 1);

/** The caller's options as a context: reused as is when it already is one. */
export function toContext(opts: ExecuteOptions | undefined): BaseContext {
  if (opts === undefined) return rootContext;
  if (opts instanceof BaseContext) return opts;
  const signal = opts.signal;
  return signal === undefined ? rootContext : new CallContext(signal, 1);
}

/** The error a policy rejects with when the caller's signal aborted. */
export function abortedError(signal: AbortSignal): InstanceType<typeof AbortedError> {
  return new AbortedError('the operation was aborted', { cause: signal.reason });
}

/** Calls `fn`, turning a synchronous throw into a rejection. */
export function invoke<T>(
  fn: (ctx: PolicyContext) => PromiseLike<T> | T,
  ctx: PolicyContext,
): PromiseLike<T> | T {
  try {
    return fn(ctx);
  } catch (err) {
    return Promise.reject(err);
  }
}

/** The function type every policy runs. */
export type Task<T> = (ctx: PolicyContext) => PromiseLike<T> | T;
