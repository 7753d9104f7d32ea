/** The inventory context's published API. Inventory owns stock levels and reservations. */
import { defineEndpoints } from '@trellis/core';
import { z } from 'zod';

export const Stock = z.object({ productId: z.string(), available: z.number().int().nonnegative() });
export type Stock = z.infer<typeof Stock>;

export const ReservationRequest = z.object({
  /** The order the stock is for (orders' `order-placed` message). */
  orderId: z.string().min(1),
  productId: z.string(),
  quantity: z.number().int().positive(),
});

export const Reservation = z.object({
  reservationId: z.string(),
  orderId: z.string(),
  productId: z.string(),
  quantity: z.number().int().positive(),
  /** Which inventory instance answered: the demo shows traffic moving between them. */
  servedBy: z.string(),
});
export type Reservation = z.infer<typeof Reservation>;

export const Problem = z.object({ error: z.string() });

export const inventoryApi = defineEndpoints({
  getStock: {
    method: 'GET',
    path: '/stock/:productId',
    response: { 200: Stock, 404: Problem.describe('unknown product') },
  },
  reserve: {
    method: 'POST',
    path: '/reservations',
    body: ReservationRequest,
    // Reservations carry an idempotency key (the outbox message id), so a redelivery is safe:
    // idempotency() answers it with the recorded reservation instead of reserving twice.
    headers: z.object({ 'idempotency-key': z.string().min(8) }),
    response: { 200: Reservation, 409: Problem.describe('not enough stock') },
  },
});
