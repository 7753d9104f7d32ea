/**
 * The catalog context's published API: what other services may rely on. The catalog owns its
 * products; nobody else reads its data except through these endpoints.
 */
import { defineEndpoints } from '@trellis/core';
import { z } from 'zod';

export const Product = z.object({
  id: z.string(),
  name: z.string(),
  priceCents: z.number().int().nonnegative(),
});
export type Product = z.infer<typeof Product>;

export const NotFound = z.object({ error: z.string() });

export const catalogApi = defineEndpoints({
  listProducts: { method: 'GET', path: '/products', response: z.array(Product) },
  getProduct: {
    method: 'GET',
    path: '/products/:id',
    response: { 200: Product, 404: NotFound },
  },
});
