import type { DataSource, EntityManager } from 'typeorm';

const tails = new WeakMap<DataSource, Promise<unknown>>();

/**
 * Runs `work` in a transaction. better-sqlite3 gives TypeORM one connection, on which two
 * overlapping transactions fail ("cannot start a transaction within a transaction"), so on
 * SQLite transactions queue up in-process; PostgreSQL takes one pooled connection each.
 */
export function inTransaction<T>(ds: DataSource, work: (em: EntityManager) => Promise<T>): Promise<T> {
  if (ds.options.type !== 'better-sqlite3') return ds.transaction(work);
  const start = () => ds.transaction(work);
  const previous = tails.get(ds) ?? Promise.resolve();
  const run = previous.then(start, start);
  tails.set(ds, run.catch(() => undefined));
  return run;
}
