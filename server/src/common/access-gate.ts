import { createHash, timingSafeEqual } from 'node:crypto';
import { type CanActivate, type ExecutionContext, Inject, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { AppException } from './app.exception.js';
import { RATE_LIMIT_BUCKET, type RateLimitBucket } from './decorators.js';
import { ErrorCode } from './error-code.js';
import { gatewayIdentity } from './gateway-identity.js';
import type { AppRequest } from './request-context.js';

export const ACCESS_TOKEN_HEADER = 'x-access-token';
const OUTSIDE_GATE = 'parley:outsideAccessGate';
/** Health, readiness, metrics and the gate's own status stay reachable for probes and the SPA. */
export const OutsideAccessGate = (): MethodDecorator & ClassDecorator => SetMetadata(OUTSIDE_GATE, true);

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** Constant-time: both sides are hashed to equal length first, so neither length nor prefix leaks. */
export function accessTokenMatches(given: string | undefined, expected: string): boolean {
  return timingSafeEqual(digest(given ?? ''), digest(expected));
}

/**
 * The optional deployment-wide gate, so strangers cannot spend the deployment's model key:
 * - ACCESS_TOKEN: creating a session (POST /api/v1/sessions) needs the shared secret, as the
 *   X-Access-Token header or an `access_token` body field. Sessions made with it keep working.
 * - TRUSTED_IDENTITY_HEADER: every API request must carry the header the gateway's own auth
 *   (e.g. oauth2-proxy) sets; the gateway must strip it from client requests.
 * Runs after the auth guard and the limits (so access tokens cannot be guessed fast); a session's
 * cookie is renewed only for a request it let through (SessionRenewalGuard, after it).
 */
@Injectable()
export class AccessGateGuard implements CanActivate {
  constructor(private readonly reflector: Reflector, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const { accessToken, trustedIdentityHeader } = this.config;
    if (!accessToken && !trustedIdentityHeader) return true;
    if (this.reflector.getAllAndOverride<boolean>(OUTSIDE_GATE, [context.getHandler(), context.getClass()])) return true;
    const req = context.switchToHttp().getRequest<AppRequest>();
    if (trustedIdentityHeader) {
      if (gatewayIdentity(req, trustedIdentityHeader) === undefined) {
        throw new AppException(ErrorCode.Unauthorized, 'Sign in through your organisation first', { reason: 'identity_required' });
      }
    }
    const bucket = Reflect.getMetadata(RATE_LIMIT_BUCKET, context.getHandler()) as RateLimitBucket | undefined;
    if (accessToken && bucket === 'session-create') {
      const body = req.body as Record<string, unknown> | undefined;
      const fromBody = typeof body?.access_token === 'string' ? body.access_token : undefined;
      // The field belongs to the gate, not to the session DTO (which forbids unknown fields).
      if (body && 'access_token' in body) delete body.access_token;
      const header = req.headers[ACCESS_TOKEN_HEADER];
      const given = typeof header === 'string' ? header : fromBody;
      if (!accessTokenMatches(given, accessToken)) {
        throw new AppException(ErrorCode.Unauthorized, given ? 'Wrong access token' : 'This deployment needs an access token', { reason: 'access_token_required' });
      }
    }
    return true;
  }
}
