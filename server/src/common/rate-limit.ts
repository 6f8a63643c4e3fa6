import { type ExecutionContext, Inject, Injectable } from '@nestjs/common';
import ipaddr from 'ipaddr.js';
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

/**
 * The client a per-address limit counts: an IPv4 address (an IPv4-mapped IPv6 one as IPv4), or an
 * IPv6 address's /64, the block one subscriber holds (counted per address, a client could take a new
 * one from its 2^64 for every request and never meet a limit).
 */
export function addressKey(ip: string | undefined): string {
  if (ip === undefined || !ipaddr.isValid(ip)) return `ip:${ip ?? 'unknown'}`;
  const parsed = ipaddr.parse(ip);
  if (parsed.kind() === 'ipv4') return `ip:${parsed.toString()}`;
  const v6 = parsed as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return `ip:${v6.toIPv4Address().toString()}`;
  return `ip6:${v6.parts.slice(0, 4).map((part) => part.toString(16)).join(':')}::/64`;
}

/** Sessions are limited per session; only session creation (no session yet) per client address. */
function bySession(req: Record<string, unknown>): string {
  const r = req as unknown as AppRequest;
  return r.auth ? `s:${r.auth.sessionId}` : addressKey(r.ip);
}
function byAddress(req: Record<string, unknown>): string {
  return addressKey((req as unknown as AppRequest).ip);
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

/** How many blocked client addresses an instance remembers (the oldest go first). */
const BLOCKED_ADDRESSES_MAX = 10_000;

/**
 * Requests refused as not signed in (401 from the auth guard), per client address (addressKey),
 * within the same budget as a session's requests. The throttler runs after the auth guard and counts
 * sessions, so these were never counted: a token of a revoked session, or garbage, could be sent
 * without limit. Counted only on a refusal: a signed-in request costs nothing more. Past the limit
 * the refusal is 429 with Retry-After instead of 401; while the address is blocked this instance
 * answers so from memory, without counting again in the shared storage (Redis).
 */
@Injectable()
export class AuthFailureLimit {
  private readonly limit: number;
  /** Address key → when its block ends (ms since the epoch), as the shared storage said. */
  private readonly blockedUntil = new Map<string, number>();

  constructor(@InjectThrottlerStorage() private readonly storage: ThrottlerStorage, @Inject(APP_CONFIG) config: AppConfig) {
    this.limit = config.rateLimits.requestsPerMinute;
  }

  /** Counts one refusal of `address`; the 429 to answer instead once over the limit. */
  async count(address: string | undefined): Promise<AppException | undefined> {
    const key = addressKey(address);
    const now = Date.now();
    const until = this.blockedUntil.get(key);
    if (until !== undefined) {
      if (until > now) return rateLimitExceeded((until - now) / 1000, this.limit);
      this.blockedUntil.delete(key);
    }
    try {
      const record = await this.storage.increment(`auth-failed:${key}`, MINUTE, this.limit, MINUTE, 'auth-failed');
      if (!record.isBlocked) return undefined;
      if (this.blockedUntil.size >= BLOCKED_ADDRESSES_MAX) this.blockedUntil.delete(this.blockedUntil.keys().next().value!);
      this.blockedUntil.set(key, now + record.timeToBlockExpire * 1000);
      return rateLimitExceeded(record.timeToBlockExpire, this.limit);
    } catch {
      // Best effort: with the limits' storage (Redis) away, the refusal stays the 401 it is.
      return undefined;
    }
  }
}
