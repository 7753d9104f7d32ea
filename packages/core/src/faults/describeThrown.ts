/**
 * Anything can be thrown: `Object.create(null)`, a symbol, a getter that throws, a proxy. These
 * helpers turn any thrown value into text or an `Error` without calling `String()` on it blindly
 * (which throws "Cannot convert object to primitive value" on a null-prototype object).
 */

/** A short, safe description of a thrown value: an Error's message, or the value's kind. */
export function describeThrown(value: unknown): string {
  try {
    if (value instanceof Error) return safeString(value.message) || value.name || 'Error';
    switch (typeof value) {
      case 'string':
        return value;
      case 'number':
      case 'boolean':
      case 'bigint':
      case 'undefined':
        return String(value);
      case 'symbol':
        return value.description === undefined ? 'Symbol()' : `Symbol(${value.description})`;
      case 'function':
        return 'a function';
      default: {
        if (value === null) return 'null';
        const message = (value as { message?: unknown }).message;
        if (typeof message === 'string' && message !== '') return message;
        return 'a non-Error object';
      }
    }
  } catch {
    return 'an unprintable value';
  }
}

/** `value` itself when it is an Error, else an Error whose message describes it and whose `cause` is it. */
export function asError(value: unknown): Error {
  if (value instanceof Error) return value;
  return new Error(`non-Error thrown: ${describeThrown(value)}`, { cause: value });
}

function safeString(value: unknown): string {
  return typeof value === 'string' ? value : '';
}
