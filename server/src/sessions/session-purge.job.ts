import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { SessionsService } from './sessions.service.js';

/** Periodically purges inactive sessions (with their conversations and files). */
@Injectable()
export class SessionPurgeJob implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(SessionPurgeJob.name);
  private timer?: NodeJS.Timeout;

  constructor(private readonly sessions: SessionsService, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.run(), this.config.sessions.purgeIntervalMs);
    this.timer.unref();
  }

  onApplicationShutdown(): void {
    clearInterval(this.timer);
  }

  async run(): Promise<number> {
    try {
      const purged = await this.sessions.purgeInactive();
      if (purged > 0) this.logger.log({ purged }, 'purged inactive sessions');
      return purged;
    } catch (err) {
      // The next tick retries; a database outage must not crash the process.
      this.logger.warn({ err }, 'session purge failed');
      return 0;
    }
  }
}
