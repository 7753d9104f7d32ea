/**
 * A typed event: call it with a listener, get back the function that unsubscribes it.
 *
 * @example
 * ```ts
 * const off = breaker.onStateChange((s) => log.info({ state: s.to }, 'breaker'));
 * off();
 * ```
 */
export type Event<T> = (listener: (value: T) => void) => () => void;

/**
 * Holds the listeners of one {@link Event}. `emit` costs one branch when nobody listens. A
 * listener that throws does not break the emitter's owner: the error is rethrown in a
 * microtask, where it surfaces like any other uncaught error.
 */
export class Emitter<T> {
  #listeners: ((value: T) => void)[] = [];

  /** The public face: hand this out, keep `emit` private. */
  readonly event: Event<T> = (listener) => {
    // Copy on write, so an emit in progress is not disturbed by (un)subscribes.
    this.#listeners = [...this.#listeners, listener];
    let active = true;
    return () => {
      if (!active) return;
      active = false;
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  };

  get listenerCount(): number {
    return this.#listeners.length;
  }

  emit(value: T): void {
    const listeners = this.#listeners;
    if (listeners.length === 0) return;
    for (const listener of listeners) {
      try {
        listener(value);
      } catch (err) {
        queueMicrotask(() => {
          throw err;
        });
      }
    }
  }

  /** Drops every listener (used by `close()`). */
  clear(): void {
    this.#listeners = [];
  }
}
