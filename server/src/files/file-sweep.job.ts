import { opendir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { FileStorage } from './file-storage.js';
import { FilesService } from './files.service.js';

const SWEEP_INTERVAL_MS = 10 * 60_000;
/** Stored objects younger than this are left alone, whatever the database says. */
const ORPHAN_GRACE_MS = 10 * 60_000;
/** A temp upload older than this belongs to a request that died with its process. */
const TEMP_MAX_AGE_MS = 60 * 60_000;

/**
 * Deletes what no row refers to any more: stored objects of purged sessions (rows cascade,
 * bytes cannot) and temp uploads and partial copies left by a crash; and uploads never sent
 * with a message once UNSENT_FILE_TTL_HOURS have passed. Runs at boot and every ten minutes.
 */
@Injectable()
export class FileSweepJob implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(FileSweepJob.name);
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;

  constructor(private readonly files: FilesService, private readonly storage: FileStorage, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  onApplicationBootstrap(): void {
    this.timer = setInterval(() => void this.run(), SWEEP_INTERVAL_MS);
    this.timer.unref();
    void this.run();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** One sweep; overlapping calls share the one in progress. */
  run(): Promise<void> {
    this.running ??= this.sweep().finally(() => { this.running = undefined; });
    return this.running;
  }

  private async sweep(): Promise<void> {
    try {
      const unsent = await this.files.deleteUnsent(new Date(Date.now() - this.config.limits.unsentFileTtlMs));
      if (unsent > 0) this.logger.log({ files: unsent }, 'deleted uploads never sent with a message');
      const orphans = await this.files.sweepOrphans(ORPHAN_GRACE_MS);
      // Copies into the uploads folder that a crash cut short (when it is on another volume than the temp folder).
      const temps = await this.sweepTemp(Date.now() - TEMP_MAX_AGE_MS) + await this.storage.sweepPartial(Date.now() - TEMP_MAX_AGE_MS);
      if (orphans + temps > 0) this.logger.log({ orphans, temps }, 'swept unreferenced upload files');
    } catch (err) {
      // The next run retries; a database or disk hiccup must not crash the process.
      this.logger.warn({ err }, 'file sweep failed');
    }
  }

  private async sweepTemp(cutoff: number): Promise<number> {
    const dir = join(this.config.dataDir, 'tmp');
    let removed = 0;
    const entries = await opendir(dir).catch(() => null);
    if (!entries) return 0;
    for await (const entry of entries) {
      if (!entry.isFile() || !entry.name.endsWith('.part')) continue;
      const path = join(dir, entry.name);
      const info = await stat(path).catch(() => null);
      if (info && info.mtimeMs < cutoff) {
        await rm(path, { force: true });
        removed++;
      }
    }
    return removed;
  }
}
