import type { CookieOptions } from 'express';
import type { AppConfig } from '../config/app-config.js';
import type { AppRequest } from './request-context.js';

/** The session cookie over plain http (a LAN install, development). */
export const SESSION_COOKIE = 'session_token';

/**
 * The session cookie over https. The `__Host-` prefix makes the browser take it only from this very
 * host, Secure, for the whole site, without a Domain: a page on a sibling subdomain cannot plant its
 * own session cookie on the visitor (session fixation by "cookie tossing": the visitor would then chat
 * in, and hand their files to, a session someone else holds the token of).
 */
export const SECURE_SESSION_COOKIE = '__Host-session_token';

/**
 * Whether the visitor reached the app over https: an https PUBLIC_URL, or the request itself over
 * https (as forwarded by a gateway trusted by TRUST_PROXY; Express ignores the header of anyone
 * else), whatever NODE_ENV says (`npm start` runs as development). Browsers drop Secure cookies over
 * plain http, so an instance reached by http on a LAN still gets a working session.
 */
function isSecureRequest(req: AppRequest, config: AppConfig): boolean {
  return req.secure || config.publicUrl?.startsWith('https:') === true;
}

/**
 * The longest a browser keeps a cookie (RFC 6265bis caps Max-Age and Expires at 400 days; Chrome
 * does). A token lasting longer (SESSION_TOKEN_TTL_SECONDS) is set with this cookie life and renewed
 * within it (SessionTokenService.isRenewalDue), or the browser would drop an active session's cookie.
 */
export const COOKIE_MAX_AGE_MS = 400 * 86_400_000;

/** The Max-Age of a session cookie holding a token that expires at `expiresAt`. */
export function sessionCookieMaxAge(expiresAt: Date, now = Date.now()): number {
  return Math.min(expiresAt.getTime() - now, COOKIE_MAX_AGE_MS);
}

/** The session cookie of this request: its name (over https only the prefixed one is set and read) and how it is set. */
export function sessionCookie(req: AppRequest, config: AppConfig): { name: string; options: CookieOptions } {
  const secure = isSecureRequest(req, config);
  return { name: secure ? SECURE_SESSION_COOKIE : SESSION_COOKIE, options: { httpOnly: true, sameSite: 'lax', secure, path: '/' } };
}
