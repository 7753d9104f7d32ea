/** The catalog service: Express, owns the product list. */
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { createHealth, createMetrics, createStatusRegistry } from '@trellis/core';
import { serve, trellis } from '@trellis/core/express';
import express from 'express';
import { problemErrors } from '../problems.js';
import { type ServiceHandle, type ServiceOptions, startAdmin } from '../service.js';
import { catalogApi, type Product } from './api.js';

const products: readonly Product[] = [
  { id: 'lamp', name: 'Desk lamp', priceCents: 3_900 },
  { id: 'chair', name: 'Office chair', priceCents: 24_900 },
  { id: 'mug', name: 'Coffee mug', priceCents: 1_200 },
];

export async function startCatalog(options: ServiceOptions): Promise<ServiceHandle> {
  const metrics = createMetrics({ defaultMetrics: false });
  const health = createHealth({
    serviceId: 'catalog',
    drainDelayMs: options.drainDelayMs,
    signals: false, // the process-wide Ctrl-C handler in main.ts stops every service
    exit: false,
    logger: options.logger,
  });
  const status = createStatusRegistry({ service: 'catalog', health });

  const app = express();
  // trustDeadline: catalog sits behind the gateway and is called by orders, Trellis callers that
  // send their remaining budget in x-trellis-deadline-ms; nothing else reaches it.
  app.use(trellis({ health, metrics, trustDeadline: true }));
  // The published contract, served: requests and answers are validated against catalogApi,
  // errors are problem+json, and /openapi.json documents it.
  app.use(
    serve(
      catalogApi,
      {
        listProducts: () => ({ status: 200, body: [...products] }),
        getProduct: ({ params }) => {
          const product = products.find((p) => p.id === params.id);
          options.logger.info(
            { productId: params.id, found: product !== undefined },
            'product looked up',
          );
          return product
            ? { status: 200, body: product }
            : { status: 404, body: { error: `no product ${params.id}` } };
        },
      },
      {
        openapi: { path: '/openapi.json', title: 'catalog', version: '1.0.0' },
        logger: options.logger,
      },
    ),
  );
  problemErrors(app, options.logger);

  const server = app.listen(options.port, options.host ?? '127.0.0.1');
  await once(server, 'listening');
  health.attach(server);
  const { port } = server.address() as AddressInfo;
  const adminUrl = await startAdmin(status, health, options.logger, options.adminPort);
  return {
    name: 'catalog',
    url: `http://127.0.0.1:${port}`,
    health,
    metrics,
    status,
    adminUrl,
    async stop() {
      await health.shutdown();
      health.close();
      metrics.close();
    },
  };
}
