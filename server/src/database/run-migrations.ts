import type { DataSource } from 'typeorm';

// Any constant works; it only has to be the same for every instance of Parley.
const MIGRATION_LOCK_KEY = 7_301_942;

/**
 * Runs pending migrations. On PostgreSQL several instances may start together, so they
 * take an advisory lock first and only one migrates; the others wait, then find nothing to do.
 * SQLite is single-host and its own write lock serialises the transaction.
 */
export async function runMigrationsOnce(ds: DataSource): Promise<string[]> {
  if (ds.options.type !== 'postgres') {
    return (await ds.runMigrations({ transaction: 'each' })).map((m) => m.name);
  }
  const runner = ds.createQueryRunner();
  await runner.connect();
  try {
    await runner.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    return (await ds.runMigrations({ transaction: 'each' })).map((m) => m.name);
  } finally {
    await runner.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => undefined);
    await runner.release();
  }
}
