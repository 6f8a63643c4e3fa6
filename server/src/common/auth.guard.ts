import { type CanActivate, type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Response } from 'express';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { SessionsService } from '../sessions/sessions.service.js';
import { AppException } from './app.exception.js';
import { AuthFailureLimit } from './rate-limit.js';
import { IGNORES_SESSION, IS_PUBLIC } from './decorators.js';
import { gatewayIdentity } from './gateway-identity.js';
import { ErrorCode } from './error-code.js';
import type { AppRequest, AuthContext } from './request-context.js';
import { sessionCookie, sessionCookieMaxAge } from './session-cookie.js';

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

/**
 * Whether the request carries the session cookie more than once. Over plain http a page of the same
 * site (another port of the host, a sibling subdomain) can set a cookie of the same name with a longer
 * path or a parent domain; the browser then sends both, the planted one first, and the victim's
 * messages went into the planter's session (session fixation). Neither can be told apart from the
 * other, so neither is used.
 */
export function hasConflictingSessionCookies(req: AppRequest, name: string): boolean {
  const header = req.headers.cookie;
  if (!header) return false;
  let seen = 0;
  for (const part of header.split(';')) {
    if (part.trimStart().startsWith(`${name}=`) && ++seen > 1) return true;
  }
  return false;
}

/**
 * Expires the session cookie at every path above the request's but the root (where Parley's own is):
 * a cookie planted with a longer path goes, the person's own stays. One planted for a parent domain
 * cannot be reached from here and keeps being refused.
 */
function clearPlantedCookies(res: Response, req: AppRequest, name: string): void {
  const segments = req.path.split('/').filter(Boolean);
  const paths: string[] = [];
  for (let i = 1; i <= segments.length && i <= 8; i++) {
    const path = `/${segments.slice(0, i).join('/')}`;
    paths.push(path, `${path}/`);
  }
  res.append('Set-Cookie', paths.map((path) => `${name}=; Path=${path}; Max-Age=0; HttpOnly; SameSite=Lax`));
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
    const publicAs = this.reflector.getAllAndOverride<boolean | typeof IGNORES_SESSION | undefined>(IS_PUBLIC, [context.getHandler(), context.getClass()]);
    if (publicAs === IGNORES_SESSION) return true;
    const isPublic = publicAs === true;
    const http = context.switchToHttp();
    const req = http.getRequest<AppRequest>();
    const { token, via } = requestToken(req, this.config) ?? {};
    const cookieName = via === 'cookie' ? sessionCookie(req, this.config).name : undefined;
    if (cookieName !== undefined && hasConflictingSessionCookies(req, cookieName)) {
      clearPlantedCookies(http.getResponse<Response>(), req, cookieName);
      if (isPublic) return true;
      throw new AppException(ErrorCode.Unauthorized,
        'This request carries two session cookies: another site on this domain set one. It was cleared where it could be; send the request again',
        { reason: 'conflicting_session_cookies' });
    }
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
        http.getResponse<Response>().cookie(cookie.name, renewed.token, { ...cookie.options, maxAge: sessionCookieMaxAge(renewed.expiresAt) });
      }
    }
    return true;
  }
}
