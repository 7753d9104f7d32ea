/**
 * The trusted-proxy model: which peers may tell us who the client is. Without an explicit
 * setting nobody is trusted, the client IP is the socket peer, and incoming `X-Forwarded-*`,
 * `Forwarded` and `x-request-id` headers are replaced. With `cidrs`, `X-Forwarded-For` is walked
 * right to left, skipping trusted addresses; with `hops`, the client is the `hops`-th address
 * from the right (Envoy's `xff_num_trusted_hops`).
 */
import { BlockList, isIP } from 'node:net';

/** The `trustedProxies` setting. */
export interface TrustedProxiesOptions {
  /** Trusted proxy addresses or networks: `10.0.0.0/8`, `::1`, `loopback`, `private`. */
  readonly cidrs?: readonly string[] | undefined;
  /** Number of trusted proxies in front of the gateway (alternative to `cidrs`). */
  readonly hops?: number | undefined;
}

const NAMED: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  private: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
};

/** Strips `::ffff:` from IPv4-mapped IPv6 addresses. */
export function normalizeIp(ip: string): string {
  return ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
}

/** Answers who the client is for one request. */
export class TrustedProxies {
  readonly #list: BlockList | undefined;
  readonly #hops: number;
  /** True when a `trustedProxies` setting was given: the gateway then writes X-Forwarded-*. */
  readonly enabled: boolean;

  constructor(options: TrustedProxiesOptions | undefined) {
    this.enabled = options !== undefined;
    this.#hops = options?.hops ?? 0;
    const cidrs = options?.cidrs ?? [];
    if (cidrs.length === 0) {
      this.#list = undefined;
      return;
    }
    const list = new BlockList();
    for (const entry of cidrs.flatMap((c) => NAMED[c] ?? [c])) {
      const [addr = '', bits] = entry.split('/');
      const type = isIP(addr) === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) list.addAddress(addr, type);
      else list.addSubnet(addr, Number(bits), type);
    }
    this.#list = list;
  }

  /** Is the socket peer a trusted proxy? */
  isTrustedPeer(peer: string): boolean {
    if (this.#hops > 0) return true;
    return this.#isTrusted(peer);
  }

  /**
   * The client IP: the peer unless the peer is trusted, then the right-most untrusted address
   * of `X-Forwarded-For` (or the `hops`-th from the right).
   */
  clientIp(peer: string, xff: string | undefined): string {
    if (xff === undefined || xff === '' || !this.isTrustedPeer(peer)) return peer;
    const chain = xff.split(',');
    if (this.#hops > 0) {
      // The peer itself is the first trusted hop.
      const index = chain.length - this.#hops;
      const candidate = (chain[Math.max(0, index)] ?? '').trim();
      return isIP(normalizeIp(candidate)) ? normalizeIp(candidate) : peer;
    }
    for (let i = chain.length - 1; i >= 0; i--) {
      const candidate = normalizeIp((chain[i] as string).trim());
      if (!isIP(candidate)) return peer;
      if (!this.#isTrusted(candidate) || i === 0) return candidate;
    }
    return peer;
  }

  #isTrusted(ip: string): boolean {
    const list = this.#list;
    if (list === undefined) return false;
    const family = isIP(ip);
    if (family === 0) return false;
    return list.check(ip, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** Formats a node for the `Forwarded` header (`for=1.2.3.4`, `for="[::1]"`). */
export function forwardedNode(ip: string): string {
  return isIP(ip) === 6 ? `"[${ip}]"` : ip;
}
