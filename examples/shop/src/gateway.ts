/** The gateway in front of the three services: routes, JWT on orders, rate limits. */
import { IDENTITY_HEADER } from './orders/service.js';
import { DEMO_ISSUER, DEMO_SECRET } from './token.js';

export interface ShopGatewayOptions {
  /** Requests per second per client IP on the public routes. */
  readonly publicRatePerSecond?: number;
  /** Orders allowed per customer per window on /api/orders. Default 20 per second. */
  readonly ordersLimit?: { readonly limit: number; readonly windowMs: number };
  /** Use the shared Redis store for rate limits (the distributed variant). */
  readonly redisUrl?: string;
}

export function shopGatewayConfig(options: ShopGatewayOptions = {}) {
  const publicLimit = { limit: options.publicRatePerSecond ?? 50, windowMs: 1_000, key: 'ip' };
  return {
    routes: [
      {
        name: 'products',
        path: '/api/products',
        rewrite: '/products',
        methods: ['GET', 'HEAD'],
        upstream: { service: 'catalog' },
        rateLimit: publicLimit,
        cors: { origins: ['*'] },
      },
      {
        name: 'stock',
        path: '/api/stock',
        rewrite: '/stock',
        methods: ['GET', 'HEAD'],
        upstream: { service: 'inventory' },
        rateLimit: publicLimit,
      },
      {
        name: 'quotes',
        path: '/api/quotes',
        rewrite: '/quotes',
        methods: ['GET', 'HEAD'],
        upstream: { service: 'orders' },
        rateLimit: publicLimit,
      },
      {
        // An order's status changes as Server-Sent Events: a streaming route (no body timeout).
        name: 'order-events',
        path: '/api/orders/:id/events',
        rewrite: '/orders/:id/events',
        methods: ['GET'],
        upstream: { service: 'orders' },
        auth: { jwt: 'shop', scopes: ['orders:write'] },
        timeouts: { streaming: true },
      },
      {
        name: 'orders',
        path: '/api/orders',
        rewrite: '/orders',
        upstream: { service: 'orders' },
        auth: { jwt: 'shop', scopes: ['orders:write'] },
        rateLimit: { ...(options.ordersLimit ?? { limit: 20, windowMs: 1_000 }), key: 'identity' },
        // Orders are created with POST: the gateway retries them only with an Idempotency-Key.
        timeouts: { connectMs: 1_000, headersMs: 5_000, bodyMs: 5_000 },
      },
    ],
    auth: {
      jwt: { shop: { secret: DEMO_SECRET, algorithms: ['HS256'], issuer: DEMO_ISSUER } },
      identityHeader: { name: IDENTITY_HEADER, format: 'subject' },
    },
    ...(options.redisUrl ? { redis: { url: options.redisUrl } } : {}),
    // /health* and /metrics of the gateway itself are served on its own port in the demo.
    admin: { mode: 'gateway' },
  } as const;
}
