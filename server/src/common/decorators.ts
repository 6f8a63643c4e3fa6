import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import { AppException } from './app.exception.js';
import { ErrorCode } from './error-code.js';
import type { AppRequest, AuthContext } from './request-context.js';

export const IS_PUBLIC = 'parley:isPublic';
/**
 * Opts a route out of the global auth guard. Everything else is guarded (fails closed). A public route still
 * learns the caller's session when it carries one (`req.auth`), unless `ignoresSession`: the probes and
 * /metrics never look it up, so that a browser's cookie or a scraper's token does not make them read the
 * database (with it down, liveness answered 503 to any request carrying a session).
 */
export const Public = (options: { ignoresSession?: boolean } = {}): MethodDecorator & ClassDecorator =>
  SetMetadata(IS_PUBLIC, options.ignoresSession ? IGNORES_SESSION : true);
/** IS_PUBLIC's value for a route that never looks the caller's session up. */
export const IGNORES_SESSION = 'ignores-session';

export type RateLimitBucket = 'session-create';
export const RATE_LIMIT_BUCKET = 'parley:rateLimitBucket';
/** Puts a route under a stricter rate limit than the default per-session one. */
export const RateLimitBucket = (bucket: RateLimitBucket): MethodDecorator => SetMetadata(RATE_LIMIT_BUCKET, bucket);

/** The caller's session, as verified by the auth guard. */
export const CurrentSession = createParamDecorator((_: unknown, ctx: ExecutionContext): AuthContext => {
  const auth = ctx.switchToHttp().getRequest<AppRequest>().auth;
  if (!auth) throw new AppException(ErrorCode.Unauthorized, 'Sign in first');
  return auth;
});
