import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type BeforeApplicationShutdown, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DataSource } from 'typeorm';

/** The part of a better-sqlite3 connection used here. */
export interface SqliteMainConnection {
  pragma(source: string): unknown;
  readonly inTransaction: boolean;
}

export interface CheckpointReport {
  /** 1 when the checkpoint could not run at all (another one was running). */
  busy: number;
  /** Frames in the WAL, and how many of them are copied into the database file. */
  log: number;
  checkpointed: number;
  /** The report of a scrub: the WAL file is empty now, for every scrub asked up to this number. */
  scrubbed?: number;
}

/** How long an erasure waits for its scrub of the WAL before it answers anyway (the worker keeps trying). */
export const SCRUB_WAIT_MS = 2_000;

export const CHECKPOINT_WORKER_PATH = join(__dirname, 'sqlite-checkpoint.worker.mjs');

/** SQLite's own default, restored when the worker is gone. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

export interface CheckpointerOptions {
  /** How often the worker checkpoints. */
  intervalMs?: number;
  /** WAL size (frames) past which the main connection copies the last frames itself, so the WAL restarts. */
  restartFrames?: number;
  /** How long `scrub()` waits for the worker's scrub before it resolves anyway (SCRUB_WAIT_MS). */
  scrubWaitMs?: number;
}

/**
 * WAL checkpoints off the event loop (SQLite only).
 *
 * SQLite checkpoints by itself inside the commit that takes the WAL past 1000 pages, on the thread
 * that commits: copying those pages and the fsync after it stalled the event loop, and every
 * stream with it, for 5–25 ms at a time on this project's machines (bench/scenarios/sqlite-checkpoint.mjs).
 * Here the main connection's automatic checkpoint is off and a worker thread with its own
 * connection runs PASSIVE checkpoints every `intervalMs`, which never block a write.
 *
 * A WAL only starts over from its beginning when a write finds every frame already copied; with
 * writes going on while the worker copies, that may never happen under steady load. So once the
 * WAL passes `restartFrames`, the main connection checkpoints once itself right after the worker
 * did: only the frames written since are left to copy (a few ms instead of 25), and no write can
 * come between, so the next one restarts the WAL. If the worker fails, SQLite's own automatic
 * checkpoint comes back.
 */
export class SqliteCheckpointer {
  private readonly logger = new Logger(SqliteCheckpointer.name);
  private worker?: Worker;
  private stopping?: Promise<void>;
  private last?: CheckpointReport;
  private mainCheckpoints = 0;
  /** Scrubs asked for so far, and the callers waiting, by the number of theirs (one scrub serves every erasure before it). */
  private scrubsAsked = 0;
  private scrubWaiters: Array<{ n: number; done: () => void }> = [];

  constructor(
    private readonly conn: SqliteMainConnection,
    private readonly path: string,
    private readonly options: CheckpointerOptions = {},
  ) {}

  /** 'worker' while the worker checkpoints, 'sqlite' when SQLite's automatic checkpoint does. */
  get mode(): 'worker' | 'sqlite' {
    return this.worker ? 'worker' : 'sqlite';
  }

  /** The worker's last checkpoint and how often the main connection had to finish one. */
  status(): { mode: 'worker' | 'sqlite'; last?: CheckpointReport; mainCheckpoints: number } {
    return { mode: this.mode, last: this.last, mainCheckpoints: this.mainCheckpoints };
  }

  start(): void {
    if (this.worker) return;
    const worker = new Worker(CHECKPOINT_WORKER_PATH, {
      workerData: { path: this.path, intervalMs: this.options.intervalMs ?? 1000 },
    });
    this.worker = worker;
    this.conn.pragma('wal_autocheckpoint = 0');
    worker.unref();
    worker.on('message', (report: CheckpointReport) => this.handleReport(report));
    worker.on('error', (err) => this.logger.warn({ err }, 'the checkpoint worker failed; SQLite checkpoints on its own again'));
    worker.on('exit', () => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.releaseScrubWaiters();
      try {
        this.conn.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
      } catch {
        // The connection is closed already: nothing left to checkpoint for.
      }
    });
  }

  /** Ends the worker; SQLite's automatic checkpoint is back afterwards. */
  stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return this.stopping ?? Promise.resolve();
    this.stopping ??= new Promise<void>((resolve) => {
      const timer = setTimeout(() => { void worker.terminate(); }, 2000);
      worker.once('exit', () => { clearTimeout(timer); resolve(); });
      worker.postMessage('stop');
    }).finally(() => { this.stopping = undefined; });
    return this.stopping;
  }

  /**
   * Rows were erased: empties the WAL file (a TRUNCATE checkpoint in the worker), whose older frames
   * may still hold their text. Resolves once it is done, or after SCRUB_WAIT_MS (the worker keeps
   * trying), or at once without a worker (SQLite's own checkpoints only; README says what is left).
   */
  scrub(): Promise<void> {
    const worker = this.worker;
    if (!worker) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, this.options.scrubWaitMs ?? SCRUB_WAIT_MS);
      timer.unref();
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      const n = ++this.scrubsAsked;
      this.scrubWaiters.push({ n, done });
      worker.postMessage({ scrub: n });
    });
  }

  /** Releases the callers whose scrub is done (up to `upTo`; all of them when the worker is gone). */
  private releaseScrubWaiters(upTo = Infinity): void {
    const released = this.scrubWaiters.filter((w) => w.n <= upTo);
    this.scrubWaiters = this.scrubWaiters.filter((w) => w.n > upTo);
    for (const w of released) w.done();
  }

  /** Called with each of the worker's checkpoints. */
  handleReport(report: CheckpointReport): void {
    this.last = report;
    if (report.scrubbed !== undefined) {
      this.releaseScrubWaiters(report.scrubbed);
      return;
    }
    if (report.log < (this.options.restartFrames ?? 4000) || report.busy !== 0) return;
    // Not inside a transaction of ours (a queued one may be open across an await): next report.
    if (this.conn.inTransaction) return;
    try {
      this.conn.pragma('wal_checkpoint(PASSIVE)');
      this.mainCheckpoints++;
    } catch (err) {
      this.logger.warn({ err }, 'checkpoint on the main connection failed');
    }
  }
}

/** Runs a SqliteCheckpointer on the application's SQLite file (nothing on PostgreSQL or :memory:). */
@Injectable()
export class SqliteCheckpointService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  checkpointer?: SqliteCheckpointer;

  constructor(private readonly ds: DataSource) {}

  onApplicationBootstrap(): void {
    const options = this.ds.options;
    if (options.type !== 'better-sqlite3' || options.database === ':memory:') return;
    const conn = (this.ds.driver as unknown as { databaseConnection: SqliteMainConnection }).databaseConnection;
    this.checkpointer = new SqliteCheckpointer(conn, options.database);
    this.checkpointer.start();
  }

  /** Rows were erased: see SqliteCheckpointer.scrub (nothing to do on PostgreSQL or :memory:). */
  scrub(): Promise<void> {
    return this.checkpointer?.scrub() ?? Promise.resolve();
  }

  /** Before the database closes (onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.checkpointer?.stop();
  }
}
