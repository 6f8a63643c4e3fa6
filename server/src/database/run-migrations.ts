import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { type DataSource, MigrationExecutor, type QueryRunner } from 'typeorm';
import { Logger } from '@nestjs/common';

// Any constant works; it only has to be the same for every instance of Parley.
const MIGRATION_LOCK_KEY = 7_301_942;
const LOCK_WAIT_MS = 60_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The lock files this process holds now. */
const heldHere = new Set<string>();

/**
 * A lock file beside the SQLite database; a lock left by a dead process is taken over, and so is one
 * naming this process that this process does not hold: a container killed mid-migration restarts with
 * the same PID (1), which then read its own PID as a live holder and waited for ever.
 */
async function withFileLock<T>(lockPath: string, fn: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      const fd = openSync(lockPath, 'wx', 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      heldHere.add(lockPath);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lockPath, { encoding: 'utf8', flag: 'r' }) || 'NaN');
      const isStale = holder === process.pid ? !heldHere.has(lockPath) : Number.isInteger(holder) && !isAlive(holder);
      if (isStale) {
        unlinkSync(lockPath);
        continue;
      }
      if (Date.now() > deadline) throw new Error(`Timed out waiting for the migration lock ${lockPath} (held by process ${holder}; delete the file if no Parley process runs)`);
      await sleep(25);
    }
  }
  try {
    return await fn();
  } finally {
    heldHere.delete(lockPath);
    unlinkSync(lockPath);
  }
}

/**
 * Runs pending migrations exactly once when several instances start together: PostgreSQL
 * instances take an advisory lock, SQLite ones a lock file beside the database. The others
 * wait, then find nothing to do.
 */
export async function runMigrationsOnce(ds: DataSource): Promise<string[]> {
  /** On `runner` when given: PostgreSQL's, which holds the lock and has no statement timeout. */
  const run = async (runner?: QueryRunner) => {
    const executor = new MigrationExecutor(ds, runner);
    executor.transaction = 'each';
    return (await executor.executePendingMigrations()).map((m) => m.name);
  };
  if (ds.options.type !== 'postgres') {
    const file = String(ds.options.database);
    return file === ':memory:' ? run() : withFileLock(`${file}.migrate-lock`, run);
  }
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    // Another instance may migrate for longer than the connections' lock_timeout: waited for, however long.
    // And a migration (an index on a big table) may take longer than the app's statement_timeout.
    await runner.query('SET lock_timeout = 0');
    await runner.query('SET statement_timeout = 0');
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    // The migrations' own statements wait for a table's lock as long as every statement of Parley's does (5 s): one
    // held by an old instance still running or an open transaction fails the start with 55P03 (README, Upgrading),
    // rather than leaving the new instance started and unhealthy for as long as the lock is held.
    await runner.query('RESET lock_timeout');
    try {
      return await run(runner);
    } catch (err) {
      if ((err as { driverError?: { code?: unknown } }).driverError?.code === '55P03') {
        new Logger('Database').error('a migration waited 5 s for a table\'s lock (55P03): an instance of the old version still running, '
          + 'or an open transaction, holds it; stop it and start again (nothing of that migration was applied)');
      }
      throw err;
    }
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.query('RESET lock_timeout').catch(() => undefined);
    await runner.query('RESET statement_timeout').catch(() => undefined);
    await runner.release();
  }
}
