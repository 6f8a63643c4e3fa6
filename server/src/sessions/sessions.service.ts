import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnModuleInit } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { LessThan, type Repository } from 'typeorm';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { RawSql } from '../database/raw-sql.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { Session } from './session.entity.js';
import { type SignedToken, SessionTokenService } from './session-token.service.js';

/**
 * How long a verified live session is trusted without reading its row again. Revocation on this
 * instance evicts it at once (logout takes effect immediately); so does one on another instance of
 * a deployment with Redis, which tells the others (ENDED_CHANNEL). Should that message be lost
 * (Redis away), a session revoked elsewhere is refused here within this time at most.
 */
export const SESSION_CACHE_MS = 5_000;
/**
 * A cached session this close to the end of its time is read again in the background, and the
 * request that noticed goes on with the cached one: a session in use is not re-read on a request's
 * path, and a revocation elsewhere still reaches this instance within SESSION_CACHE_MS.
 */
export const SESSION_REFRESH_MS = 1_000;
const SESSION_CACHE_MAX = 10_000;
/** The Redis channel (after REDIS_PREFIX) on which an instance names a session it revoked or erased. */
const ENDED_CHANNEL = 'sessions:ended';

@Injectable()
export class SessionsService implements OnModuleInit, OnApplicationBootstrap {
  private readonly logger = new Logger(SessionsService.name);
  /** Verified live sessions by id (see SESSION_CACHE_MS): no database read per request. */
  private readonly verified = new Map<string, { session: Session; until: number }>();
  /**
   * Sessions found revoked or gone, by id: an ended session never comes back (ids are random, a
   * revocation is final), so a token that still names one is refused without a database read, which
   * every such request cost before (unthrottled until the auth guard counted its refusals). Bounded;
   * the oldest go first.
   */
  private readonly ended = new Set<string>();
  /** Told once a session is logged out (the chat module stops the answers it still generates). */
  private readonly revokedHooks: Array<(sessionId: string) => Promise<void>> = [];
  /** Counts revocations and purges, so a read that raced one is not cached. */
  private revocations = 0;
  /** Sessions being re-read in the background (one read per session at a time). */
  private readonly refreshing = new Set<string>();
  /**
   * The session read and the last_accessed touch as fixed SQL: TypeORM's query builder ran on the
   * path of the request that asked, even for a refresh, which is not awaited but built its query
   * before its first await (0.26 ms median in the auth guard at 150 streams; docs/performance.md).
   */
  private readonly raw: RawSql;

  constructor(
    @InjectRepository(Session) private readonly repo: Repository<Session>,
    private readonly tokens: SessionTokenService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly redis: RedisConnection,
  ) {
    this.raw = new RawSql(repo.manager.connection);
  }

  /** With Redis: a session another instance revoked or erased leaves this one's cache at once. */
  onModuleInit(): void {
    if (!this.redis.isEnabled) return;
    const channel = this.redis.prefix + ENDED_CHANNEL;
    const sub = this.redis.createSubscriber();
    sub.on('message', (from: string, id: string) => { if (from === channel) this.forget(id); });
    sub.subscribe(channel).catch((err: unknown) => this.logger.warn({ err }, 'could not subscribe to ended sessions'));
  }

  /**
   * A secret generated at this start while the database already holds sessions: they were signed with another one (a
   * restore without DATA_DIR/session-secret, a DATA_DIR lost beside a kept database), so every one of them is refused
   * for good. Said once, loudly: the operator can still put the old secret back and restart.
   */
  async onApplicationBootstrap(): Promise<void> {
    if (this.config.sessionSecretSource !== 'generated') return;
    const existing = await this.repo.createQueryBuilder('s').select('s.id', 'id').limit(1).getRawOne<{ id: string }>();
    if (existing === undefined) return;
    this.logger.error(
      { secretFile: join(this.config.dataDir, 'session-secret') },
      'a new session secret was generated, but the database holds sessions signed with another: every one of them is '
        + 'refused. If this is a restore, stop, put back the session-secret file (or SESSION_SECRET) the backup was made with, '
        + 'and start again',
    );
  }

  /** Tells the other instances (after the row is written, so that a re-read finds it ended). */
  private announceEnded(id: string): void {
    this.redis.client?.publish(this.redis.prefix + ENDED_CHANNEL, id)
      .catch((err: unknown) => this.logger.warn({ err }, 'could not tell the other instances of an ended session'));
  }

  /** A new session; its token is bound to `identity` (TRUSTED_IDENTITY_HEADER's value) when given. */
  async create(userAgent: string | undefined, ipAddress: string | undefined, identity?: string): Promise<{ session: Session } & SignedToken> {
    const now = new Date();
    const session = this.repo.create({
      id: randomUUID(), createdAt: now, lastAccessed: now, revokedAt: null,
      userAgent: userAgent?.slice(0, 512) ?? null, ipAddress: ipAddress?.slice(0, 64) ?? null,
    });
    await this.repo.insert(session);
    return { session, ...this.tokens.issue(session.id, identity) };
  }

  /**
   * A new token for the session a valid token names (same identity binding, a full lifetime from now),
   * or null when the token is not valid. The old token keeps working until it expires or the session is
   * revoked: a session in use stays signed in, while its data outlives any one token.
   */
  renewToken(token: string): SignedToken | null {
    return this.tokens.renew(token);
  }

  /** A new token when this valid one has lived past half its lifetime (a cookie renewed on use), else null. */
  renewalDue(token: string): SignedToken | null {
    return this.tokens.isRenewalDue(token) ? this.tokens.renew(token) : null;
  }

  /**
   * The live session a token names, or null. Touches last_accessed at most once per interval. A token
   * bound to a gateway identity is refused under another one (`identity`: the request's, when the
   * deployment has TRUSTED_IDENTITY_HEADER): on a shared browser, whoever signs in next at the gateway
   * does not inherit the previous person's session. Tokens made before this binding existed carry none.
   */
  async authenticate(token: string, identity?: string): Promise<Session | null> {
    const claims = this.tokens.verifyClaims(token);
    if (!claims) return null;
    if (claims.idh !== undefined && identity !== undefined && claims.idh !== this.tokens.identityDigest(identity)) return null;
    const id = claims.sid;
    const now = Date.now();
    const cached = this.verified.get(id);
    let session: Session | null;
    if (cached && cached.until > now) {
      session = cached.session;
      if (cached.until - now <= SESSION_REFRESH_MS) this.refresh(id);
    } else {
      if (this.ended.has(id)) return null;
      // The generation tells whether a revocation happened while this read was in flight.
      const generation = this.revocations;
      session = await this.findLive(id);
      if (!session) {
        this.verified.delete(id);
        this.markEnded(id);
        return null;
      }
      if (generation === this.revocations) this.remember(session, now);
    }
    if (now - session.lastAccessed.getTime() >= this.config.sessions.touchIntervalMs) {
      session.lastAccessed = new Date(now);
      // Not awaited: a slow touch must not delay the request; a failed one is only logged.
      this.raw.update(Session, id, { lastAccessed: session.lastAccessed })
        .catch((err: unknown) => this.logger.warn({ err }, 'could not update last_accessed'));
    }
    return session;
  }

  /** Reads a cached session's row again without holding up the request that found it due. */
  private refresh(id: string): void {
    if (this.refreshing.has(id)) return;
    this.refreshing.add(id);
    const generation = this.revocations;
    this.findLive(id)
      .then((session) => {
        if (generation !== this.revocations) return;
        if (session) this.remember(session, Date.now());
        else {
          this.verified.delete(id);
          this.markEnded(id);
        }
      }, (err: unknown) => this.logger.warn({ err }, 'could not re-read a session'))
      .finally(() => this.refreshing.delete(id));
  }

  /** The session's row unless it was revoked. */
  private async findLive(id: string): Promise<Session | null> {
    const session = await this.raw.findById(Session, id);
    return session && session.revokedAt === null ? session : null;
  }

  /** Whether the session exists and is not revoked, read from the database (not this instance's cache). */
  async isLive(id: string): Promise<boolean> {
    return (await this.findLive(id)) !== null;
  }

  /** One's own session; another id is 404, exactly like a missing one. */
  async findOwn(callerId: string, id: string): Promise<Session> {
    if (callerId !== id) throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
    const session = await this.findLive(id);
    if (!session) throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
    return session;
  }

  /** Deletes the session's row (what still refers to it goes with it: the schema cascades); its token stops working at once. */
  async erase(id: string): Promise<void> {
    this.forget(id);
    await this.repo.delete({ id });
    // Again: a request that read the row before the delete must not put it back.
    this.forget(id);
    this.markEnded(id);
    this.announceEnded(id);
  }

  async revoke(id: string): Promise<void> {
    this.forget(id);
    await this.repo.update({ id }, { revokedAt: new Date() });
    // Again: a request that read the row before the update must not put it back.
    this.forget(id);
    this.markEnded(id);
    this.announceEnded(id);
    // Best effort: the session is logged out whatever a hook meets.
    for (const hook of this.revokedHooks) {
      await hook(id).catch((err: unknown) => this.logger.warn({ err, sessionId: id }, 'after logout: a step failed'));
    }
  }

  /**
   * Registers what must happen once a session is logged out; registered by modules that depend on this
   * one (the chat module stops the answers the session still generates: nobody can read them any more).
   */
  onRevoked(hook: (sessionId: string) => Promise<void>): void {
    this.revokedHooks.push(hook);
  }

  private forget(id?: string): void {
    this.revocations++;
    if (id === undefined) this.verified.clear();
    else this.verified.delete(id);
  }

  private markEnded(id: string): void {
    if (this.ended.size >= SESSION_CACHE_MAX) this.ended.delete(this.ended.values().next().value!);
    this.ended.add(id);
  }

  private remember(session: Session, now: number): void {
    // Entries stay in the order they expire (a Map iterates in insertion order, and the time is
    // fixed), so the expired ones, and the oldest when full, are at the head.
    this.verified.delete(session.id);
    for (const [id, entry] of this.verified) {
      if (entry.until > now && this.verified.size < SESSION_CACHE_MAX) break;
      this.verified.delete(id);
    }
    this.verified.set(session.id, { session, until: now + SESSION_CACHE_MS });
  }

  /** Up to `take` of the sessions idle longer than the configured period (to purge), least recently used first. */
  async inactiveIds(take: number, now = new Date()): Promise<string[]> {
    const rows = await this.repo.find({ where: { lastAccessed: LessThan(this.purgeCutoff(now)) }, select: { id: true }, order: { lastAccessed: 'ASC' }, take });
    return rows.map((r) => r.id);
  }

  /** Whether session `id` is still idle past the period (not used since it was listed to purge). */
  async isInactive(id: string, now = new Date()): Promise<boolean> {
    return await this.repo.existsBy({ id, lastAccessed: LessThan(this.purgeCutoff(now)) });
  }

  private purgeCutoff(now: Date): Date {
    return new Date(now.getTime() - this.config.sessions.inactiveDays * 86_400_000);
  }

  countActiveSince(since: Date): Promise<number> {
    return this.repo.createQueryBuilder('s').where('s.last_accessed >= :since', { since }).andWhere('s.revoked_at IS NULL').getCount();
  }
}
