import { type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { InjectThrottlerStorage, ThrottlerGuard, type ThrottlerLimitDetail, type ThrottlerModuleOptions, ThrottlerStorage } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
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

/** Parley's storages (memory, Redis) can also return a hit that was counted (ChatRateLimit.giveBack). */
export interface RefundableThrottlerStorage extends ThrottlerStorage {
  /** Takes one hit back from the key's current window, if it has one and is not blocked. */
  giveBack(key: string, throttlerName: string): Promise<void>;
}

function isRefundable(storage: ThrottlerStorage): storage is RefundableThrottlerStorage {
  return typeof (storage as Partial<RefundableThrottlerStorage>).giveBack === 'function';
}

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
      // The chat routes count here as requests too; their sends are counted by ChatRateLimit.
      {
        name: 'default', ttl: MINUTE, limit: r.requestsPerMinute, getTracker: bySession, skipIf: (c) => bucketOf(c) === 'session-create',
        // One budget per session across the routes (the throttler's own key adds the route: each had its own).
        generateKey: (_context, tracker, name) => `${name}:${tracker}`,
      },
      { name: 'session-create', ttl: MINUTE, limit: r.sessionsPerMinute, getTracker: byAddress, skipIf: (c) => bucketOf(c) !== 'session-create' },
    ],
  };
}

/**
 * 429 RATE_LIMIT_EXCEEDED with a plain Retry-After header (whole seconds, at least 1). Also for the
 * per-session limits on things in flight (open streams, uploads being read), with their own message.
 */
export function rateLimitExceeded(retryAfterSeconds: number, limit: number, message?: string): AppException {
  const retryAfter = Math.max(1, Math.ceil(retryAfterSeconds));
  return new AppException(
    ErrorCode.RateLimitExceeded,
    message ?? `Rate limit exceeded. Please try again in ${retryAfter} s.`,
    { retry_after_seconds: retryAfter, limit },
    { 'Retry-After': String(retryAfter) },
  );
}

/** Throttler guard that answers with our envelope and a plain Retry-After header. */
@Injectable()
export class AppThrottlerGuard extends ThrottlerGuard {
  protected override throwThrottlingException(_context: ExecutionContext, detail: ThrottlerLimitDetail): Promise<void> {
    throw rateLimitExceeded(detail.isBlocked ? detail.timeToBlockExpire : detail.timeToExpire, detail.limit);
  }
}

/**
 * The chat sends of a session (document 11.2: per minute and per hour), counted once a send is
 * accepted: the chat service takes one after every check has passed and before anything is
 * stored. Counted in the guard, a request refused as invalid, as another session's conversation
 * or as 409 (a reply still running) used the budget up too. Same storage as the throttler's
 * (Redis when several instances share the limits).
 */
@Injectable()
export class ChatRateLimit {
  private readonly windows: { name: string; ttl: number; limit: number }[];

  constructor(@InjectThrottlerStorage() private readonly storage: ThrottlerStorage, @Inject(APP_CONFIG) config: AppConfig) {
    this.windows = [
      { name: 'chat-minute', ttl: MINUTE, limit: config.rateLimits.chatPerMinute },
      { name: 'chat-hour', ttl: HOUR, limit: config.rateLimits.chatPerHour },
    ];
  }

  /** Counts one send of the session; 429 RATE_LIMIT_EXCEEDED (with Retry-After) past a limit. */
  async take(sessionId: string): Promise<void> {
    for (const w of this.windows) {
      const record = await this.storage.increment(`${w.name}:s:${sessionId}`, w.ttl, w.limit, w.ttl, w.name);
      if (record.isBlocked) throw rateLimitExceeded(record.timeToBlockExpire, w.limit);
    }
  }

  /**
   * Returns a send counted by `take` and then refused before its turn was stored (409 from another
   * instance's running reply, found only in the turn's transaction; its conversation deleted
   * meanwhile). Best effort: a refund that fails leaves the send counted.
   */
  async giveBack(sessionId: string): Promise<void> {
    if (!isRefundable(this.storage)) return;
    for (const w of this.windows) await this.storage.giveBack(`${w.name}:s:${sessionId}`, w.name).catch(() => undefined);
  }
}

/**
 * Requests refused as not signed in (401 from the auth guard), per client address, within the same
 * budget as a session's requests. The throttler runs after the auth guard and counts sessions, so
 * these were never counted: a token of a revoked session, or garbage, could be sent without limit
 * (each a signature check, the first a database read). Counted only on a refusal: a signed-in
 * request costs nothing more. Past the limit the refusal is 429 with Retry-After instead of 401.
 */
@Injectable()
export class AuthFailureLimit {
  private readonly limit: number;

  constructor(@InjectThrottlerStorage() private readonly storage: ThrottlerStorage, @Inject(APP_CONFIG) config: AppConfig) {
    this.limit = config.rateLimits.requestsPerMinute;
  }

  /** Counts one refusal of `address`; the 429 to answer instead once over the limit. */
  async count(address: string | undefined): Promise<AppException | undefined> {
    try {
      const record = await this.storage.increment(`auth-failed:ip:${address ?? 'unknown'}`, MINUTE, this.limit, MINUTE, 'auth-failed');
      return record.isBlocked ? rateLimitExceeded(record.timeToBlockExpire, this.limit) : undefined;
    } catch {
      // Best effort: with the limits' storage (Redis) away, the refusal stays the 401 it is.
      return undefined;
    }
  }
}
