import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { AppException } from './app.exception.js';
import { ErrorCode } from './error-code.js';
import type { AppRequest } from './request-context.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function originOf(value: string): string | null {
  try {
    return new URL(value).origin;
  } catch {
    return null;
  }
}

/**
 * Writes from a browser must come from our own origin (or a configured one): those
 * authenticated by the cookie, and those without a session at all, such as creating one, which
 * sets the cookie (a page elsewhere could otherwise post a form that replaces the visitor's
 * session with a new one: login CSRF). Bearer requests carry no ambient credential, and requests
 * without Origin/Referer (non-browser clients) cannot be forged by a page, so both pass.
 */
@Injectable()
export class CsrfGuard implements CanActivate {
  constructor(@Inject(APP_CONFIG) private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<AppRequest>();
    if (SAFE_METHODS.has(req.method) || req.auth?.via === 'bearer') return true;
    if (req.headers['sec-fetch-site'] === 'cross-site') this.reject();
    const origin = req.headers.origin;
    const referer = req.headers.referer;
    const claimed = typeof origin === 'string' ? originOf(origin) : typeof referer === 'string' ? originOf(referer) : undefined;
    if (claimed === undefined) return true;
    if (claimed === null || !this.allowedOrigins(req).has(claimed)) this.reject();
    return true;
  }

  private allowedOrigins(req: AppRequest): Set<string> {
    // req.protocol and req.host honour X-Forwarded-* only from a trusted gateway (TRUST_PROXY).
    const own = this.config.publicUrl ?? `${req.protocol}://${req.host}`;
    return new Set([own, ...this.config.corsOrigins]);
  }

  private reject(): never {
    throw new AppException(ErrorCode.Forbidden, 'Cross-site request refused');
  }
}
