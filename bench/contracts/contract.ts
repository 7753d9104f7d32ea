/** The contract both the served and the hand-written apps implement. */
import { defineEndpoints, sse } from '@trellis/core';
import { z } from 'zod';

export const Params = z.object({ shop: z.string().min(1).max(32) });
export const Query = z.object({ limit: z.coerce.number().int().min(1).max(100).optional() });
export const Body = z.object({
  sku: z.string().min(1).max(16),
  qty: z.number().int().min(1).max(100),
  note: z.string().max(64).optional(),
});
export const Created = z.object({
  shop: z.string(),
  sku: z.string(),
  qty: z.number(),
  limit: z.number(),
});
export const Tick = z.object({ n: z.number().int(), at: z.number() });

export const benchApi = defineEndpoints({
  addItem: {
    method: 'POST',
    path: '/shops/:shop/items',
    params: Params,
    query: Query,
    body: Body,
    response: { 201: Created },
  },
  ticks: { method: 'GET', path: '/ticks', response: sse(Tick) },
});

export const PATH = '/shops/acme/items?limit=10';
export const BODY = JSON.stringify({ sku: 'lamp-01', qty: 2, note: 'gift' });
