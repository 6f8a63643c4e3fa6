import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { AppException } from './app.exception.js';
import { AuthFailureLimit } from './rate-limit.js';
import { IS_PUBLIC } from './decorators.js';
import { ErrorCode } from './error-code.js';
import type { AppRequest, AuthContext } from './request-context.js';
import { sessionCookie } from './session-cookie.js';

function bearerToken(req: AppRequest): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  const match = /^Bearer\s+([A-Za-z0-9._~+/=-]+)$/i.exec(header.trim());
  return match?.[1];
}

/** The session token a request carries: its Bearer token, or else its session cookie (named after the request's scheme). */
export function requestToken(req: AppRequest, config: AppConfig): { token: string; via: AuthContext['via'] } | undefined {
  const bearer = bearerToken(req);
  if (bearer) return { token: bearer, via: 'bearer' };
  const cookies = req.cookies as Record<string, string | undefined> | undefined;
  // The cookie's name depends on the scheme (session-cookie.ts): worked out only without a Bearer token.
  const cookie = cookies?.[sessionCookie(req, config).name];
  return cookie ? { token: cookie, via: 'cookie' } : undefined;
}

/** The person the gateway signed in (TRUSTED_IDENTITY_HEADER), when the deployment has one. */
export function gatewayIdentity(req: AppRequest, header: string | undefined): string | undefined {
  if (!header) return undefined;
  const value = req.headers[header];
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

/** The one auth guard: a Bearer token or the session cookie; routes are guarded unless @Public(). */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly sessions: SessionsService,
    private readonly failures: AuthFailureLimit,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const isPublic = this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    const http = context.switchToHttp();
    const req = http.getRequest<AppRequest>();
    const { token, via } = requestToken(req, this.config) ?? {};
    if (!token || !via) {
      if (isPublic) return true;
      throw await this.refusal(req, 'Sign in first: create a session with POST /api/v1/sessions');
    }
    const session = await this.sessions.authenticate(token, gatewayIdentity(req, this.config.trustedIdentityHeader));
    if (!session) {
      // A public route still works with a stale cookie (e.g. creating a fresh session).
      if (isPublic) return true;
      throw await this.refusal(req, 'Invalid or expired session');
    }
    const auth: AuthContext = { sessionId: session.id, via, token };
    req.auth = auth;
    return true;
  }

  /** 401, or 429 once the caller's address has been refused too often (AuthFailureLimit). */
  private async refusal(req: AppRequest, message: string): Promise<AppException> {
    return await this.failures.count(req.ip) ?? new AppException(ErrorCode.Unauthorized, message);
  }
}

/**
 * A browser in use stays signed in: its cookie is renewed once its token is past half its life (a
 * Bearer client renews its own token: POST /sessions/current/token). Not a check (it never refuses):
 * the last of the global guards, so that it runs only for a request every check let through. Renewed
 * in the auth guard, a request the access gate (no gateway sign-in), the CSRF check or the limits then
 * refused still carried a fresh cookie, and a token holder could keep a session alive from refused
 * requests. A guard rather than an interceptor: an interceptor wraps every route's handler in an RxJS
 * chain, on the path of every chat request (docs/performance.md).
 */
@Injectable()
export class SessionRenewalGuard implements CanActivate {
  constructor(private readonly sessions: SessionsService, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const http = context.switchToHttp();
    const req = http.getRequest<AppRequest>();
    if (req.auth?.via === 'cookie') {
      const renewed = this.sessions.renewalDue(req.auth.token);
      if (renewed) {
        const cookie = sessionCookie(req, this.config);
        http.getResponse<Response>().cookie(cookie.name, renewed.token, { ...cookie.options, maxAge: renewed.expiresAt.getTime() - Date.now() });
      }
    }
    return true;
  }
}
