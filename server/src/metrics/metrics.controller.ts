import { createHash, timingSafeEqual } from 'node:crypto';
import { Controller, Get, Inject, Req, Res } from '@nestjs/common';
import { SkipThrottle } from '@nestjs/throttler';
import { ApiExcludeController } from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { OutsideAccessGate } from '../common/access-gate.js';
import { AppException } from '../common/app.exception.js';
import { Public } from '../common/decorators.js';
import { ErrorCode } from '../common/error-code.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { MetricsService } from './metrics.service.js';

const digest = (s: string): Buffer => createHash('sha256').update(s).digest();

/** A request from this host (loopback) that no proxy passed on: a forwarding header means one did. */
export function isLocalUnproxied(req: Pick<Request, 'headers' | 'socket'>): boolean {
  const address = req.socket.remoteAddress ?? '';
  const isLoopback = address === '::1' || /^(::ffff:)?127\./.test(address);
  const h = req.headers;
  return isLoopback && !h['x-forwarded-for'] && !h.forwarded && !h['x-real-ip'];
}

/**
 * Prometheus scrapes each instance directly; the public gateway answers 404 for /metrics. With
 * METRICS_TOKEN set, the scrape must send it as a Bearer token. Without one, only a scrape from
 * this host that came through no proxy is answered, and any other request gets the 404 of a
 * route that does not exist: a plain `npm start` listens on every interface, and the metrics
 * (routes, volumes, models in use) are not for the internet.
 */
@ApiExcludeController()
@OutsideAccessGate()
// Probes must not depend on Redis (rate-limit storage) nor use up anyone's limit.
@SkipThrottle()
@Controller('metrics')
export class MetricsController {
  constructor(private readonly metrics: MetricsService, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  @Get()
  @Public({ ignoresSession: true })
  async scrape(@Req() req: Request, @Res({ passthrough: true }) res: Response): Promise<string> {
    const expected = this.config.metricsToken;
    if (!expected && !isLocalUnproxied(req)) throw new AppException(ErrorCode.NotFound, `Cannot GET ${req.path}`);
    if (expected) {
      const given = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
      // Hashes have equal length, so the comparison is constant-time whatever was sent.
      if (!timingSafeEqual(digest(given), digest(expected))) throw new AppException(ErrorCode.Unauthorized, 'Metrics need the METRICS_TOKEN bearer token');
    }
    const { contentType, body } = await this.metrics.render();
    res.setHeader('Content-Type', contentType);
    res.setHeader('Cache-Control', 'no-store');
    return body;
  }
}
