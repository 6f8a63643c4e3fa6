import { readFileSync } from 'node:fs';
import { statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ChatMetrics } from '../chat/chat-metrics.js';
import { InjectDataSource } from '@nestjs/typeorm';
import { OFFLINE_MODEL } from '../chat/providers/offline-chat.provider.js';
import type { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig, type LlmProviderName } from '../config/app-config.js';
import { PoolWatch } from '../database/pool-watch.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { ShutdownService } from './shutdown.service.js';

export type HealthStatus = 'ok' | 'degraded' | 'down';
export type CheckResult = 'ok' | 'down';

function readVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? 'unknown';
  } catch {
    // Only the version string is lost; health still answers.
    return 'unknown';
  }
}

const DB_CHECK_TIMEOUT_MS = 2_000;
/** Probes may come every second from several gateways: the disk's free space is read at most this often. */
const STORAGE_CHECK_CACHE_MS = 5_000;
/** A disk that does not say its free space in this time (a network mount gone) counts as down. */
const STORAGE_CHECK_TIMEOUT_MS = 2_000;

class StorageCheckTimeout extends Error {}

@Injectable()
export class HealthService {
  private readonly logger = new Logger('Health');
  private readonly version = readVersion();
  private readonly startedAt = Date.now();
  private storageCheck?: { at: number; result: Promise<CheckResult> };
  /** The statfs under way: one at a time, however many checks time out waiting for it. */
  private freeBytesReading?: Promise<number>;
  /** PostgreSQL's pool (the data source is initialized before any provider that injects it); none on SQLite. */
  private readonly pool: PoolWatch | undefined;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly redis: RedisConnection,
    private readonly shutdown: ShutdownService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    private readonly moduleRef: ModuleRef,
  ) {
    this.pool = PoolWatch.of(dataSource);
  }

  /**
   * The database answers: a SELECT 1 within DB_CHECK_TIMEOUT_MS. On PostgreSQL, while the pool is
   * full (every connection serving a request), a query answered on any connection in that time
   * tells the same without waiting behind them; a full pool where nothing is answered in that time
   * is down (stuck, or the database gone).
   */
  async checkDatabase(): Promise<CheckResult> {
    if (this.pool?.isFull && this.pool.answeredWithin(DB_CHECK_TIMEOUT_MS)) return 'ok';
    const other = this.pool?.nextAnswer();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.dataSource.query('SELECT 1'),
        new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('timeout')), DB_CHECK_TIMEOUT_MS); }),
        // Another request's query answered while this one waits for a connection.
        ...(other ? [other.answered] : []),
      ]);
      return 'ok';
    } catch {
      // The result itself says the database is unreachable.
      return 'down';
    } finally {
      clearTimeout(timer);
      other?.cancel();
    }
  }

  /**
   * DATA_DIR's disk (SQLite, uploads) has room: not under READY_MIN_FREE_BYTES, and not none at all.
   * Deliberately not STORAGE_MIN_FREE_BYTES: that one only pauses uploads, and a small disk under it
   * must still serve chats.
   */
  checkStorage(): Promise<CheckResult> {
    const now = Date.now();
    if (this.storageCheck === undefined || now - this.storageCheck.at >= STORAGE_CHECK_CACHE_MS) {
      this.storageCheck = { at: now, result: this.measureStorage() };
    }
    return this.storageCheck.result;
  }

  private async measureStorage(): Promise<CheckResult> {
    const { dataDir } = this.config;
    const minFreeBytes = this.config.limits.readyMinFreeBytes;
    // A read that hangs holds one of libuv's four threads (every file read of the process shares them):
    // later checks wait on the same read rather than each taking another.
    const reading = this.freeBytesReading ??= this.freeBytes(dataDir).finally(() => { this.freeBytesReading = undefined; });
    let timer: NodeJS.Timeout | undefined;
    try {
      const freeBytes = await Promise.race([
        reading,
        new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new StorageCheckTimeout()), STORAGE_CHECK_TIMEOUT_MS); }),
      ]);
      if (freeBytes > 0 && freeBytes >= minFreeBytes) return 'ok';
      this.logger.error({ dataDir, freeBytes, minFreeBytes }, 'not ready: the data directory\'s disk is full (READY_MIN_FREE_BYTES); free disk space');
    } catch (err) {
      // Then SQLite and the uploads cannot use it either.
      if (err instanceof StorageCheckTimeout) this.logger.error({ dataDir, timeoutMs: STORAGE_CHECK_TIMEOUT_MS }, 'not ready: the data directory\'s disk does not answer');
      else this.logger.error({ dataDir, err }, 'not ready: the data directory\'s free space cannot be read');
    } finally {
      clearTimeout(timer);
    }
    return 'down';
  }

  /** Free bytes for an unprivileged writer on `dir`'s file system (a method of its own: the spec stands in a disk that hangs). */
  protected async freeBytes(dir: string): Promise<number> {
    const fs = await statfs(dir);
    return fs.bavail * fs.bsize;
  }

  /** Every backing service this instance needs: the database, and Redis when REDIS_URL is set. */
  async checkDependencies(): Promise<Record<string, CheckResult>> {
    const [database, redis] = await Promise.all([this.checkDatabase(), this.redis.check()]);
    return redis === undefined ? { database } : { database, redis };
  }

  /**
   * The model, for a real one: `down` once it failed the last replies in a row (ChatMetrics.isModelFailing: a wrong
   * key or model name, its server unreachable). Told by health as `degraded`, never by readiness: the instance still
   * serves history, and another instance would meet the same model.
   */
  private checkModel(): CheckResult | undefined {
    if (this.config.llm.provider !== 'openai') return undefined;
    try {
      return this.moduleRef.get(ChatMetrics, { strict: false }).isModelFailing ? 'down' : 'ok';
    } catch {
      // The chat module is not part of this application (a test's): nothing to tell.
      return undefined;
    }
  }

  async report(): Promise<{ status: HealthStatus; version: string; uptime: number; checks: Record<string, CheckResult>; provider: LlmProviderName; model: string }> {
    const dependencies = await this.checkDependencies();
    const model = this.checkModel();
    const checks = model === undefined ? dependencies : { ...dependencies, model };
    const isUp = Object.values(dependencies).every((c) => c === 'ok');
    return {
      status: !isUp ? 'down' : model === 'down' ? 'degraded' : 'ok',
      version: this.version,
      uptime: Math.round((Date.now() - this.startedAt) / 1000),
      checks,
      // The chat's active model (the same as in the stream's first event and GET /chat/config).
      provider: this.config.llm.provider,
      model: this.config.llm.provider === 'offline' ? OFFLINE_MODEL : this.config.llm.model,
    };
  }

  /**
   * Ready to take traffic: dependencies reachable, not shutting down, and on SQLite room on the data directory's disk
   * (the database is there). On PostgreSQL that disk holds the uploads only, shared by every instance: full, it pauses
   * uploads (503 each), while taking every instance out of rotation would stop the chats too.
   */
  async readiness(): Promise<{ status: 'ok' | 'down'; checks: Record<string, CheckResult> }> {
    const isSqlite = this.config.database.type === 'sqlite';
    const [dependencies, storage] = await Promise.all([this.checkDependencies(), isSqlite ? this.checkStorage() : undefined]);
    const checks: Record<string, CheckResult> = { ...dependencies, ...(storage ? { storage } : {}), accepting: this.shutdown.isDraining ? 'down' : 'ok' };
    return { status: Object.values(checks).every((c) => c === 'ok') ? 'ok' : 'down', checks };
  }
}
