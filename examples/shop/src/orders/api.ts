/** The orders context's published API (what the gateway exposes under /api/orders). */
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
  reservationId: z.string(),
  inventoryInstance: z.string(),
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
