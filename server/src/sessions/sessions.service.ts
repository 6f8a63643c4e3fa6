import { randomUUID } from 'node:crypto';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { InjectRepository } from '@nestjs/typeorm';
import { IsNull, LessThan, type Repository } from 'typeorm';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { Session } from './session.entity.js';
import { SessionTokenService } from './session-token.service.js';

@Injectable()
export class SessionsService {
  private readonly logger = new Logger(SessionsService.name);

  constructor(
    @InjectRepository(Session) private readonly repo: Repository<Session>,
    private readonly tokens: SessionTokenService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  async create(userAgent: string | undefined, ipAddress: string | undefined): Promise<{ session: Session; token: string }> {
    const now = new Date();
    const session = this.repo.create({
      id: randomUUID(), createdAt: now, lastAccessed: now, revokedAt: null,
      userAgent: userAgent?.slice(0, 512) ?? null, ipAddress: ipAddress?.slice(0, 64) ?? null,
    });
    await this.repo.insert(session);
    return { session, token: this.tokens.sign(session.id) };
  }

  /** The live session a token names, or null. Touches last_accessed at most once per interval. */
  async authenticate(token: string): Promise<Session | null> {
    const id = this.tokens.verify(token);
    if (!id) return null;
    const session = await this.repo.findOneBy({ id, revokedAt: IsNull() });
    if (!session) return null;
    const now = Date.now();
    if (now - session.lastAccessed.getTime() >= this.config.sessions.touchIntervalMs) {
      session.lastAccessed = new Date(now);
      // Not awaited: a slow touch must not delay the request; a failed one is only logged.
      this.repo.update({ id }, { lastAccessed: session.lastAccessed })
        .catch((err: unknown) => this.logger.warn({ err }, 'could not update last_accessed'));
    }
    return session;
  }

  /** One's own session; another id is 404, exactly like a missing one. */
  async findOwn(callerId: string, id: string): Promise<Session> {
    if (callerId !== id) throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
    const session = await this.repo.findOneBy({ id, revokedAt: IsNull() });
    if (!session) throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
    return session;
  }

  async revoke(id: string): Promise<void> {
    await this.repo.update({ id }, { revokedAt: new Date() });
  }

  /** Deletes sessions idle longer than the configured period; their conversations, messages and file rows cascade. */
  async purgeInactive(now = new Date()): Promise<number> {
    const cutoff = new Date(now.getTime() - this.config.sessions.inactiveDays * 86_400_000);
    const result = await this.repo.delete({ lastAccessed: LessThan(cutoff) });
    return result.affected ?? 0;
  }

  countActiveSince(since: Date): Promise<number> {
    return this.repo.createQueryBuilder('s').where('s.last_accessed >= :since', { since }).andWhere('s.revoked_at IS NULL').getCount();
  }
}
