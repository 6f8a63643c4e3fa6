import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { SessionErasure } from './session-erasure.service.js';
import { SessionsService } from './sessions.service.js';

/** Sessions listed per query while purging, and the most lists per run (the next run goes on). */
const PURGE_BATCH = 50;
const PURGE_MAX_BATCHES = 200;

/**
 * Periodically purges inactive sessions with everything in them, one session at a time, as their
 * owner's erasure does (files with their bytes, conversations with their messages in chunks): the
 * one DELETE of every idle session, cascading through all their rows, ran on SQLite's event loop for
 * as long as it took, every stream stalled meanwhile.
 */
@Injectable()
export class SessionPurgeJob implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SessionPurgeJob.name);
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly sessions: SessionsService,
    private readonly erasure: SessionErasure,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.run(), this.config.sessions.purgeIntervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async run(): Promise<number> {
    try {
      const purged = await this.purge();
      if (purged > 0) this.logger.log({ purged }, 'purged inactive sessions');
      return purged;
    } catch (err) {
      // The next tick retries; a database outage must not crash the process.
      this.logger.warn({ err }, 'session purge failed');
      return 0;
    }
  }

  private async purge(): Promise<number> {
    let purged = 0;
    for (let batch = 0; batch < PURGE_MAX_BATCHES; batch++) {
      const ids = await this.sessions.inactiveIds(PURGE_BATCH);
      for (const id of ids) {
        // Used again since it was listed: kept.
        if (!await this.sessions.isInactive(id)) continue;
        await this.erasure.erase(id);
        purged++;
      }
      if (ids.length < PURGE_BATCH) break;
    }
    return purged;
  }
}
