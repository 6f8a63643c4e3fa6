import { type ExecutionContext, Injectable } from '@nestjs/common';
import { ThrottlerGuard, type ThrottlerLimitDetail, type ThrottlerModuleOptions, type ThrottlerStorage } from '@nestjs/throttler';
import type { AppConfig } from '../config/app-config.js';
import { AppException } from './app.exception.js';
import { RATE_LIMIT_BUCKET, type RateLimitBucket } from './decorators.js';
import { ErrorCode } from './error-code.js';
import type { AppRequest } from './request-context.js';

const MINUTE = 60_000;
const HOUR = 3_600_000;

function bucketOf(context: ExecutionContext): RateLimitBucket | undefined {
  return Reflect.getMetadata(RATE_LIMIT_BUCKET, context.getHandler()) as RateLimitBucket | undefined;
}

/** Sessions are limited per session; only session creation (no session yet) per client address. */
function bySession(req: Record<string, unknown>): string {
  const r = req as unknown as AppRequest;
  return r.auth ? `s:${r.auth.sessionId}` : `ip:${r.ip ?? 'unknown'}`;
}
function byAddress(req: Record<string, unknown>): string {
  return `ip:${(req as unknown as AppRequest).ip ?? 'unknown'}`;
}

export type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

/** A storage's answer, its times in whole seconds as the throttler guard expects them. */
export function throttlerRecord(totalHits: number, msToExpire: number, isBlocked: boolean, msToBlockExpire: number): ThrottlerStorageRecord {
  return {
    totalHits,
    timeToExpire: Math.ceil(msToExpire / 1000),
    isBlocked,
    timeToBlockExpire: Math.ceil(msToBlockExpire / 1000),
  };
}

/** The throttlers of document 11.2 plus a looser default for every other route. */
export function throttlerOptions(config: AppConfig, storage?: ThrottlerStorage): ThrottlerModuleOptions {
  const r = config.rateLimits;
  return {
    storage,
    setHeaders: false,
    throttlers: [
      { name: 'default', ttl: MINUTE, limit: r.requestsPerMinute, getTracker: bySession, skipIf: (c) => bucketOf(c) !== undefined },
      { name: 'chat-minute', ttl: MINUTE, limit: r.chatPerMinute, getTracker: bySession, skipIf: (c) => bucketOf(c) !== 'chat' },
      { name: 'chat-hour', ttl: HOUR, limit: r.chatPerHour, getTracker: bySession, skipIf: (c) => bucketOf(c) !== 'chat' },
      { name: 'session-create', ttl: MINUTE, limit: r.sessionsPerMinute, getTracker: byAddress, skipIf: (c) => bucketOf(c) !== 'session-create' },
    ],
  };
}

/** Throttler guard that answers with our envelope and a plain Retry-After header. */
@Injectable()
export class AppThrottlerGuard extends ThrottlerGuard {
  protected override throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    const retryAfter = Math.max(1, Math.ceil(detail.isBlocked ? detail.timeToBlockExpire : detail.timeToExpire));
    throw new AppException(
      ErrorCode.RateLimitExceeded,
      `Rate limit exceeded. Please try again in ${retryAfter} s.`,
      { retry_after_seconds: retryAfter, limit: detail.limit },
      { 'Retry-After': String(retryAfter) },
    );
  }
}
