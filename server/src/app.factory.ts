import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { Logger } from 'pino';
import { AppModule } from './app.module.js';
import { configureHttp } from './common/http-pipeline.js';
import { PinoNestLogger, createRootLogger } from './common/logger.js';
import { setupSwagger } from './common/swagger.js';
import type { AppConfig } from './config/app-config.js';
import { HealthService } from './health/health.service.js';

export interface CreatedApp { app: NestExpressApplication; logger: Logger }

/** Builds the whole application (not listening yet). main.ts and the HTTP tests share it. */
export async function createApp(config: AppConfig): Promise<CreatedApp> {
  const logger = createRootLogger(config.logLevel);
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config), {
    bodyParser: false,
    logger: new PinoNestLogger(logger),
  });
  configureHttp(app, config, logger);
  if (config.swaggerEnabled) setupSwagger(app, (await app.get(HealthService).report()).version);
  app.enableShutdownHooks();
  return { app, logger };
}
