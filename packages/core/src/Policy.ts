/** What a policy hands to the function it runs. */
export interface PolicyContext {
  /** Aborts when the caller gives up, a timeout fires, or a hedge wins elsewhere. Pass it on. */
  readonly signal: AbortSignal;
  /** 1 for the first try, 2 for the first retry, ... */
  readonly attempt: number;
}

export interface ExecuteOptions {
  /** The caller's signal; aborting it aborts the call and whatever the policy is waiting on. */
  signal?: AbortSignal;
}

/**
 * One interface for every resilience policy (retry, breaker, timeout, ...) so that a typed
 * client, a gateway route or user code can take any of them, or a `pipeline(...)` of them.
 */
export interface Policy {
  execute<T>(fn: (ctx: PolicyContext) => PromiseLike<T> | T, opts?: ExecuteOptions): Promise<T>;
}

const neverAborted = new AbortController().signal;

/** A policy that just runs the function: the default where a policy is optional. */
export const noopPolicy: Policy = {
  async execute(fn, opts) {
    return fn({ signal: opts?.signal ?? neverAborted, attempt: 1 });
  },
};
