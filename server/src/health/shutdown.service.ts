import type { Server } from 'node:http';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import type { NextFunction, Request, Response } from 'express';
import { ErrorCode } from '../common/error-code.js';
import type { AppRequest } from '../common/request-context.js';
import { errorEnvelope, writeError } from '../common/write-error.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';

/** Something that must finish (or be saved) before the process exits, e.g. running generations. */
export type Drainer = (graceMs: number) => Promise<void>;

/** Something still open once the drainers are done that would hold the exit back, e.g. streams of another instance's answers. */
export type Closer = () => Promise<void>;

/**
 * Graceful shutdown on SIGTERM (main.ts): readiness turns 503 so the gateway stops sending,
 * the listener closes, new requests on kept-alive connections get 503 + Connection: close,
 * registered drainers (running generations) get SHUTDOWN_GRACE_MS, then the closers end what is
 * still open (app.close() waits for every connection), then Nest closes the rest.
 */
@Injectable()
export class ShutdownService {
  private readonly logger = new Logger('Shutdown');
  private readonly drainers = new Map<string, Drainer>();
  private readonly closers = new Map<string, Closer>();
  private draining = false;

  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig, private readonly adapterHost: HttpAdapterHost) {}

  get isDraining(): boolean {
    return this.draining;
  }

  register(name: string, drainer: Drainer): void {
    this.drainers.set(name, drainer);
  }

  /** Runs once every drainer has finished (whatever they ended has ended by then). */
  registerCloser(name: string, closer: Closer): void {
    this.closers.set(name, closer);
  }

  /** Answers new requests with 503 while draining; health and metrics keep answering. */
  middleware(): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      if (!this.draining || req.path.startsWith('/api/v1/health') || req.path === '/metrics') {
        next();
        return;
      }
      res.setHeader('Connection', 'close');
      writeError(res, 503, errorEnvelope(ErrorCode.ServiceUnavailable, 'This instance is shutting down; please retry.', (req as AppRequest).id ?? ''), { 'Retry-After': '1' });
    };
  }

  async drain(graceMs = this.config.shutdownGraceMs): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    const started = Date.now();
    const server = this.adapterHost.httpAdapter?.getHttpServer() as Server | undefined;
    // Stop accepting connections; idle kept-alive ones close now, busy ones after their response.
    server?.close();
    server?.closeIdleConnections();
    // Connections whose response ends later (a finishing stream) would otherwise idle in
    // keep-alive until their timeout and hold the exit back; close each as soon as it idles.
    const reaper = setInterval(() => server?.closeIdleConnections(), 100);
    reaper.unref();
    server?.once('close', () => clearInterval(reaper));
    this.logger.log({ graceMs, drainers: [...this.drainers.keys()] }, 'draining');
    const results = await Promise.allSettled([...this.drainers.values()].map((d) => d(graceMs)));
    for (const r of results) if (r.status === 'rejected') this.logger.error({ err: r.reason as unknown }, 'drain failed');
    const closed = await Promise.allSettled([...this.closers.values()].map((c) => c()));
    for (const r of closed) if (r.status === 'rejected') this.logger.error({ err: r.reason as unknown }, 'close failed');
    this.logger.log({ ms: Date.now() - started }, 'drained');
  }
}
