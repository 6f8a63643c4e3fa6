import { NestFactory } from '@nestjs/core';
import { ExpressAdapter, type NestExpressApplication } from '@nestjs/platform-express';
import express from 'express';
import type { DestinationStream, Logger } from 'pino';
import { AppModule } from './app.module.js';
import { configureHttp } from './common/http-pipeline.js';
import { PinoNestLogger, createRootLogger } from './common/logger.js';
import { setupSwagger } from './common/swagger.js';
import type { AppConfig } from './config/app-config.js';
import { HealthService } from './health/health.service.js';
import { ShutdownService } from './health/shutdown.service.js';
import { MetricsService } from './metrics/metrics.service.js';

export interface CreatedApp { app: NestExpressApplication; logger: Logger }

/** Builds the whole application (not listening yet). main.ts and the HTTP tests share it. */
export async function createApp(config: AppConfig, options: { logDestination?: DestinationStream } = {}): Promise<CreatedApp> {
  const logger = createRootLogger(config.logLevel, options.logDestination);
  // Paths as the contract writes them: `/API/V1/Conversations` or `/api/v1/chat/config/` is a path nothing answers
  // (404), as the OpenAPI document's exact paths say; Express matched any case and a trailing slash, which the
  // probes' exemption from the host check (by exact path) did not. Set before the router exists (the adapter's first use).
  const server = express();
  server.set('case sensitive routing', true);
  server.set('strict routing', true);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), new ExpressAdapter(server), {
    bodyParser: false,
    logger: new PinoNestLogger(logger),
  });
  // Before everything else: time whole requests; refuse new ones while draining.
  app.use(app.get(MetricsService).httpMiddleware());
  app.use(app.get(ShutdownService).middleware());
  configureHttp(app, config, logger);
  if (config.swaggerEnabled) setupSwagger(app, (await app.get(HealthService).report()).version);
  // No enableShutdownHooks(): main.ts handles SIGTERM itself, draining generations before app.close().
  return { app, logger };
}
