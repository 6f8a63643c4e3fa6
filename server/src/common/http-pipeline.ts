import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import cookieParser from 'cookie-parser';
import express, { type NextFunction, type Request, type Response } from 'express';
import helmet from 'helmet';
import type { Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import type { AppConfig } from '../config/app-config.js';
import { ErrorCode } from './error-code.js';
import { createValidationPipe } from './validation.pipe.js';
import type { AppRequest } from './request-context.js';
import { requestIdMiddleware } from './request-id.js';
import { errorEnvelope, writeError } from './write-error.js';

const QUIET_PATHS = new Set(['/api/v1/health', '/api/v1/health/live', '/api/v1/health/ready', '/metrics']);

/** The security headers of every response. No inline script is allowed; no upgrade-insecure-requests (LAN over http). */
function securityHeaders(): ReturnType<typeof helmet> {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        // Angular injects component styles at runtime as <style> elements.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        fontSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
        objectSrc: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
      },
    },
    strictTransportSecurity: false, // set by the TLS gateway, which knows whether TLS is on
    referrerPolicy: { policy: 'strict-origin-when-cross-origin' },
    crossOriginEmbedderPolicy: false,
    xFrameOptions: { action: 'deny' },
  });
}

/** Body-parser failures happen before Nest's filter; answer them with the same envelope. */
function bodyErrorHandler(err: unknown, req: Request, res: Response, next: NextFunction): void {
  const e = err as { type?: string; status?: number };
  const requestId = (req as AppRequest).id;
  if (e.type === 'entity.parse.failed') {
    writeError(res, 400, errorEnvelope(ErrorCode.ValidationError, 'Malformed JSON body', requestId));
  } else if (e.type === 'entity.too.large') {
    writeError(res, 413, errorEnvelope(ErrorCode.PayloadTooLarge, 'Request body too large', requestId));
  } else if (typeof e.status === 'number' && e.status >= 400 && e.status < 500) {
    writeError(res, e.status === 415 ? 415 : 400, errorEnvelope(e.status === 415 ? ErrorCode.UnsupportedFileType : ErrorCode.ValidationError, 'Unreadable request body', requestId));
  } else {
    next(err);
  }
}

/** Everything about HTTP that is not a route: ids, logs, headers, bodies, validation. Used by main and by tests. */
export function configureHttp(app: INestApplication, config: AppConfig, logger: Logger): void {
  const express_ = app as NestExpressApplication;
  express_.set('trust proxy', config.trustProxy);
  express_.disable('x-powered-by');
  app.use(requestIdMiddleware);
  app.use(pinoHttp({
    logger,
    genReqId: (req) => (req as unknown as AppRequest).id,
    // Only method, path and status: never headers with tokens, never query strings or bodies.
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({ id: req.id, method: req.method, path: req.url.split('?')[0] }),
      res: (res: { statusCode: number }) => ({ status: res.statusCode }),
    },
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    // Probes and scrapes arrive every few seconds; logging them would drown the real traffic.
    autoLogging: { ignore: (req) => QUIET_PATHS.has(req.url ?? '') },
  }));
  app.use(securityHeaders());
  app.use('/api', (_req: Request, res: Response, next: NextFunction) => {
    res.setHeader('Cache-Control', 'no-store');
    next();
  });
  app.use(cookieParser());
  app.use(express.json({ limit: config.limits.jsonBodyBytes }));
  app.use(bodyErrorHandler);
  if (config.corsOrigins.length > 0) {
    // Only listed origins, never '*', since credentials (the cookie) are allowed.
    app.enableCors({ origin: config.corsOrigins, credentials: true, exposedHeaders: ['X-Request-Id', 'Retry-After'] });
  }
  app.useGlobalPipes(createValidationPipe());
}
