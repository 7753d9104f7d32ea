/** The orders context's published API (what the gateway exposes under /api/orders). */
import { defineEndpoints, sse } from '@trellis/core';
import { z } from 'zod';

export const OrderRequest = z.object({
  productId: z.string().min(1),
  quantity: z.number().int().positive().max(100),
});

export const Order = z.object({
  orderId: z.string(),
  productId: z.string(),
  quantity: z.number().int(),
  totalCents: z.number().int(),
  customer: z.string(),
  /**
   * `pending` until orders' outbox relay has delivered the `order-placed` message to inventory;
   * then `reserved` (with the reservation and the instance that made it) or `rejected` (no stock).
   */
  reservation: z.enum(['pending', 'reserved', 'rejected']),
  reservationId: z.string().nullable(),
  inventoryInstance: z.string().nullable(),
});
export type Order = z.infer<typeof Order>;

export const Quote = z.object({
  productId: z.string(),
  name: z.string(),
  priceCents: z.number().int(),
  /** `null` when inventory could not be asked in time (the fallback answered). */
  available: z.number().int().nullable(),
  degraded: z.boolean(),
});
export type Quote = z.infer<typeof Quote>;

export const Problem = z.object({ error: z.string() });

/** The message orders' outbox carries to inventory when an order is placed. */
export const OrderPlaced = z.object({
  orderId: z.string(),
  productId: z.string(),
  quantity: z.number().int().positive(),
});
export type OrderPlaced = z.infer<typeof OrderPlaced>;

/** The stages an order goes through after it is placed. */
export const OrderStatus = z.enum(['placed', 'packed', 'shipped']);
export type OrderStatus = z.infer<typeof OrderStatus>;

/** One status change, streamed as a Server-Sent Event (its id is the change's index). */
export const OrderStatusEvent = z.object({
  orderId: z.string(),
  status: OrderStatus,
  at: z.iso.datetime(),
});
export type OrderStatusEvent = z.infer<typeof OrderStatusEvent>;

export const ordersApi = defineEndpoints({
  createOrder: {
    method: 'POST',
    path: '/orders',
    summary: 'Place an order (the gateway puts the verified customer in x-shop-customer)',
    body: OrderRequest,
    headers: z.object({
      'x-shop-customer': z.string().optional(),
      'idempotency-key': z.string().min(8).optional(),
    }),
    response: {
      201: Order,
      404: Problem.describe('unknown product'),
    },
  },
  getOrder: {
    method: 'GET',
    path: '/orders/:id',
    response: { 200: Order, 404: Problem.describe('no such order') },
  },
  watchOrder: {
    method: 'GET',
    path: '/orders/:id/events',
    summary: "The order's status changes as Server-Sent Events (204 when there is nothing more)",
    response: sse(OrderStatusEvent),
  },
  getQuote: {
    method: 'GET',
    path: '/quotes/:productId',
    response: { 200: Quote, 404: Problem.describe('unknown product') },
  },
});
