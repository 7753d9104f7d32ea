/**
 * The apps bench/contracts/main.ts measures, one per process: `node apps.ts <variant>` listens
 * on a free port and sends `{ port }` over IPC.
 *
 * - `<framework>-hand`: the route written by hand with the same zod parses as the served
 *   route with its default options: params, query and body (a 400 on failure), and the answer
 *   against `Created` (a 500 if it broke it); Express with `express.json()` and `res.json`,
 *   Fastify with its own JSON parser and `reply.send`.
 * - `<framework>-served`: the same route from `serve(benchApi, ...)`, default options (response
 *   validation on).
 * - `<framework>-hand-noresp` / `<framework>-served-noresp`: the same without the check of the
 *   answer (`validateResponse: false` for the served one).
 * - `fastify-hooks`: the hand-written Fastify route moved into Fastify's own validation and
 *   serialisation hooks (route `schema` with the zod schemas, a `validatorCompiler` returning
 *   `{ value }` from `safeParse`, a `serializerCompiler` checking the answer, as
 *   fastify-type-provider-zod does): what plugging into Fastify's hooks costs by itself, the floor
 *   of the served Fastify route, which the issue asks to use those hooks.
 * - `sse`: `serve` streaming `Tick` events as fast as the connection takes them.
 *
 * Every app answers the IPC message `'cpu'` with `{ cpu: process.cpuUsage() }` (user + system
 * microseconds of the whole process), which bench/contracts/cost.ts reads around a batch of
 * requests while the server is otherwise idle.
 */
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { serve as serveExpress } from '@trellis/core/express';
import { serve as serveFastify } from '@trellis/core/fastify';
import express5 from 'express';
import Fastify from 'fastify';
import type { z } from 'zod';
import { Body, benchApi, Created, Params, Query } from './contract.js';

const express4 = createRequire(import.meta.url)('express4') as typeof express5;
const variant = process.argv[2] ?? '';
const checkAnswer = !variant.endsWith('-noresp');

const handlers = {
  addItem: ({
    params,
    query,
    body,
  }: {
    params: { shop: string };
    query: { limit?: number | undefined };
    body: { sku: string; qty: number };
  }) => ({
    status: 201 as const,
    body: { shop: params.shop, sku: body.sku, qty: body.qty, limit: query.limit ?? 20 },
  }),
  ticks: () => ({
    status: 200 as const,
    body: (async function* () {
      for (let n = 0; ; n++) yield { data: { n, at: n } };
    })(),
  }),
};

async function listenExpress(app: ReturnType<typeof express5>): Promise<number> {
  return new Promise((resolve) => {
    const server = app.listen(0, '127.0.0.1', () =>
      resolve((server.address() as AddressInfo).port),
    );
  });
}

async function start(): Promise<number> {
  const [framework, kind] = variant.split('-');
  if (framework === 'express4' || framework === 'express5' || variant === 'sse') {
    const express = framework === 'express4' ? express4 : express5;
    const app = express();
    if (kind === 'hand') {
      app.post('/shops/:shop/items', express.json(), (req, res) => {
        const p = Params.safeParse(req.params);
        const q = Query.safeParse(req.query);
        const b = Body.safeParse(req.body);
        if (!p.success || !q.success || !b.success) {
          res.status(400).json({ error: 'invalid request' });
          return;
        }
        const out = {
          shop: p.data.shop,
          sku: b.data.sku,
          qty: b.data.qty,
          limit: q.data.limit ?? 20,
        };
        if (checkAnswer && !Created.safeParse(out).success) {
          res.status(500).json({ error: 'internal error' });
          return;
        }
        res.status(201).json(out);
      });
    } else {
      app.use(serveExpress(benchApi, handlers, { validateResponse: checkAnswer }));
    }
    return listenExpress(app);
  }
  const app = Fastify();
  if (kind === 'hooks') {
    const parts: Record<string, z.ZodType> = { params: Params, querystring: Query, body: Body };
    app.post(
      '/shops/:shop/items',
      {
        schema: { params: Params, querystring: Query, body: Body, response: { 201: Created } },
        validatorCompiler: ({ httpPart }) => {
          const schema = parts[httpPart ?? 'body'] as z.ZodType;
          return (data: unknown) => {
            const r = schema.safeParse(data);
            return r.success ? { value: r.data } : { error: r.error };
          };
        },
        serializerCompiler: () => (data: unknown) => {
          if (!Created.safeParse(data).success) throw new Error('the answer breaks the contract');
          return JSON.stringify(data);
        },
      },
      (request, reply) => {
        const p = request.params as z.output<typeof Params>;
        const q = request.query as z.output<typeof Query>;
        const b = request.body as z.output<typeof Body>;
        reply.code(201).send({ shop: p.shop, sku: b.sku, qty: b.qty, limit: q.limit ?? 20 });
      },
    );
  } else if (kind === 'hand') {
    app.post('/shops/:shop/items', (request, reply) => {
      const p = Params.safeParse(request.params);
      const q = Query.safeParse(request.query);
      const b = Body.safeParse(request.body);
      if (!p.success || !q.success || !b.success) {
        reply.code(400).send({ error: 'invalid request' });
        return;
      }
      const out = {
        shop: p.data.shop,
        sku: b.data.sku,
        qty: b.data.qty,
        limit: q.data.limit ?? 20,
      };
      if (checkAnswer && !Created.safeParse(out).success) {
        reply.code(500).send({ error: 'internal error' });
        return;
      }
      reply.code(201).send(out);
    });
  } else {
    await app.register(serveFastify(benchApi, handlers, { validateResponse: checkAnswer }));
  }
  await app.listen({ port: 0, host: '127.0.0.1' });
  return (app.server.address() as AddressInfo).port;
}

const port = await start();
process.on('message', (m) => {
  if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
});
process.send?.({ port });
process.on('disconnect', () => process.exit(0));
