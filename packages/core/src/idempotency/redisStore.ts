/**
 * The Redis idempotency store (`@trellis/core/idempotency/redis`; needs the optional peer
 * `ioredis`). One round trip per new request (`SET NX PX` and, when the key exists, `GET`, in
 * one Lua script) and one per replay.
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { parseOptions } from '../options.js';
import type {
  ClaimResult,
  IdempotencyStore,
  RecordedAnswer,
  RecordId,
} from './IdempotencyStore.js';
import { storeError, withTimeout } from './withTimeout.js';

export interface RedisStoreOptions {
  /** An ioredis client (or cluster client); the store defines its scripts on it. */
  redis: Redis;
  /** Prefix of every key. Default `trellis:idem:`. */
  prefix?: string;
  /** Each command's time limit; beyond it the store fails (see `onStoreError`). Default 1 000 ms. */
  timeoutMs?: number;
}

const schema = z.strictObject({
  redis: z.custom<Redis>(
    (v) => typeof v === 'object' && v !== null && typeof (v as Redis).defineCommand === 'function',
    'must be an ioredis client',
  ),
  prefix: z.string().default('trellis:idem:'),
  timeoutMs: z.number().int().positive().max(60_000).default(1_000),
});

// In progress: "P" token "|" fingerprint. Completed: "C" fingerprint "|" JSON answer.
const CLAIM = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 1 end
return redis.call('GET', KEYS[1])`;
const RENEW = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1 end
return 0`;
const COMPLETE = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], 'C' .. string.sub(v, #ARGV[1] + 1) .. '|' .. ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0`;
const RELEASE = `
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

type Scripted = Redis & {
  trellisIdemClaim(key: string, value: string, leaseMs: number): Promise<number | string | null>;
  trellisIdemRenew(key: string, prefix: string, leaseMs: number): Promise<number>;
  trellisIdemComplete(key: string, prefix: string, value: string, ttlMs: number): Promise<number>;
  trellisIdemRelease(key: string, prefix: string): Promise<number>;
};

/**
 * Creates a Redis store. Claims are atomic (`SET NX PX` in a script); an in-progress key lives
 * for the lease only, so a holder that crashed frees it when the lease runs out; the middleware
 * renews the lease while the handler runs.
 *
 * Redis down: every command fails after `timeoutMs` and the middleware applies its
 * `onStoreError` (`'closed'`: 503; `'open'`: run unprotected). A request already running when
 * Redis goes away still answers; its answer is not recorded, so a retry runs again. Without
 * persistence (AOF), a Redis restart forgets every key.
 */
export function redisStore(options: RedisStoreOptions): IdempotencyStore {
  const o = parseOptions(schema, options, 'redisStore');
  const redis = o.redis as Scripted;
  const define = (name: string, lua: string) => {
    if (typeof (redis as unknown as Record<string, unknown>)[name] !== 'function') {
      redis.defineCommand(name, { numberOfKeys: 1, lua });
    }
  };
  define('trellisIdemClaim', CLAIM);
  define('trellisIdemRenew', RENEW);
  define('trellisIdemComplete', COMPLETE);
  define('trellisIdemRelease', RELEASE);
  const keyOf = (id: RecordId) => `${o.prefix}${id.scope.length}:${id.scope}:${id.key}`;
  const run = async <T>(what: string, p: () => Promise<T>): Promise<T> => {
    try {
      return await withTimeout(p(), o.timeoutMs, `redisStore ${what}`);
    } catch (err) {
      throw storeError(err, `redisStore ${what}`);
    }
  };

  return {
    leases: true,
    async claim(id, fp, opts): Promise<ClaimResult> {
      const token = randomUUID().replace(/-/g, '');
      const r = await run('claim', () =>
        redis.trellisIdemClaim(keyOf(id), `P${token}|${fp}`, Math.ceil(opts.leaseMs)),
      );
      if (r === 1) return { state: 'claimed', token };
      return decode(String(r));
    },
    async renew(id, token, opts) {
      const r = await run('renew', () =>
        redis.trellisIdemRenew(keyOf(id), `P${token}|`, Math.ceil(opts.leaseMs)),
      );
      return r === 1;
    },
    async complete(id, token, answer, opts) {
      // The script keeps the claim's fingerprint: "P<token>|<fp>" becomes "C<fp>|<answer>".
      const r = await run('complete', () =>
        redis.trellisIdemComplete(keyOf(id), `P${token}|`, encode(answer), Math.ceil(opts.ttlMs)),
      );
      return r === 1;
    },
    async release(id, token) {
      await run('release', () => redis.trellisIdemRelease(keyOf(id), `P${token}|`));
    },
  };
}

function encode(a: RecordedAnswer): string {
  return JSON.stringify({ s: a.status, h: a.headers, b: Buffer.from(a.body).toString('base64') });
}

function decode(v: string): ClaimResult {
  const bar = v.indexOf('|');
  if (v.startsWith('P')) return { state: 'in-progress', fingerprint: v.slice(bar + 1) };
  const fingerprint = v.slice(1, bar);
  const a = JSON.parse(v.slice(bar + 1)) as { s: number; h: Record<string, string>; b: string };
  return {
    state: 'completed',
    fingerprint,
    answer: { status: a.s, headers: a.h, body: Buffer.from(a.b, 'base64') },
  };
}
