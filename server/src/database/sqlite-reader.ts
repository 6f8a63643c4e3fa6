import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type BeforeApplicationShutdown, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { DataSource } from 'typeorm';

export const READ_WORKER_PATH = join(__dirname, 'sqlite-read.worker.mjs');

type Reply = { id: number; rows: unknown[] } | { id: number; error: string };

/**
 * Long reads off the event loop (SQLite only): a worker thread with its own read-only connection runs
 * them, one at a time (sqlite-read.worker.mjs). For reads whose cost grows with what a user has
 * written (a search through every message of a session), which on the server's synchronous
 * connection stalled every stream for their whole length. Reads the last committed state (WAL), as
 * the server's own connection does outside a transaction.
 *
 * `all` resolves undefined when no worker runs (it failed, or is stopped): the caller reads on the
 * main connection as before.
 */
export class SqliteReader {
  private readonly logger = new Logger(SqliteReader.name);
  private worker?: Worker;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (rows: unknown[]) => void; reject: (err: Error) => void }>();

  constructor(private readonly path: string) {}

  get isRunning(): boolean {
    return this.worker !== undefined;
  }

  start(): void {
    if (this.worker) return;
    const worker = new Worker(READ_WORKER_PATH, { workerData: { path: this.path } });
    this.worker = worker;
    worker.unref();
    worker.on('message', (reply: Reply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if ('error' in reply) waiting.reject(new Error(reply.error));
      else waiting.resolve(reply.rows);
    });
    worker.on('error', (err) => this.logger.warn({ err }, 'the read worker failed; long reads run on the main connection again'));
    worker.on('exit', () => {
      if (this.worker === worker) this.worker = undefined;
      for (const waiting of this.pending.values()) waiting.reject(new Error('the read worker stopped'));
      this.pending.clear();
    });
  }

  /** The rows of `sql` (SQLite's `?` placeholders), read on the worker; undefined when none runs. */
  all<T>(sql: string, params: unknown[]): Promise<T[]> | undefined {
    const worker = this.worker;
    if (!worker) return undefined;
    const id = this.nextId++;
    return new Promise<T[]>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (rows: unknown[]) => void, reject });
      worker.postMessage({ id, sql, params });
    });
  }

  /** Ends the worker after the reads already sent to it. */
  async stop(): Promise<void> {
    const worker = this.worker;
    if (!worker) return;
    this.worker = undefined;
    const timer = setTimeout(() => { void worker.terminate(); }, 2000);
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('stop');
    await exited;
    clearTimeout(timer);
  }
}

/** Runs a SqliteReader on the application's SQLite file (none on PostgreSQL, whose reads never block the event loop, or :memory:). */
@Injectable()
export class SqliteReadService implements OnApplicationBootstrap, BeforeApplicationShutdown {
  reader?: SqliteReader;

  constructor(private readonly ds: DataSource) {}

  onApplicationBootstrap(): void {
    const options = this.ds.options;
    if (options.type !== 'better-sqlite3' || options.database === ':memory:') return;
    this.reader = new SqliteReader(options.database);
    this.reader.start();
  }

  /** The rows of `sql` read off the event loop, or undefined (PostgreSQL, or no worker): read them on the main connection. */
  all<T>(sql: string, params: unknown[]): Promise<T[]> | undefined {
    return this.reader?.all<T>(sql, params);
  }

  /** Before the database closes (onApplicationShutdown). */
  async beforeApplicationShutdown(): Promise<void> {
    await this.reader?.stop();
  }
}
