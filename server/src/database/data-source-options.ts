import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config.js';
import { ENTITIES } from './entities.js';
import { POSTGRES_MIGRATIONS } from './migrations/postgres/index-list.js';
import { SQLITE_MIGRATIONS } from './migrations/sqlite/index-list.js';

/** Busy writers wait this long for SQLite's lock instead of failing with SQLITE_BUSY. */
const SQLITE_BUSY_TIMEOUT_MS = 5_000;

/**
 * One set of migrations per dialect, both generated from the same entities
 * (see generate-migration.ts); a test proves each migrated schema matches them.
 * `synchronize` is never on.
 */
export function dataSourceOptions(db: DatabaseConfig, overrides: { poolSize?: number } = {}): DataSourceOptions {
  if (db.type === 'postgres') {
    return {
      type: 'postgres',
      url: db.url,
      entities: ENTITIES,
      migrations: POSTGRES_MIGRATIONS,
      migrationsTableName: 'migrations',
      synchronize: false,
      poolSize: overrides.poolSize ?? 10,
      // A lost database makes queries fail fast (503) instead of queueing forever.
      extra: { connectionTimeoutMillis: 5_000, idleTimeoutMillis: 30_000 },
    };
  }
  if (db.path !== ':memory:') {
    mkdirSync(dirname(db.path), { recursive: true });
    ownerOnly(db.path);
  }
  return {
    type: 'better-sqlite3',
    database: db.path,
    entities: ENTITIES,
    migrations: SQLITE_MIGRATIONS,
    migrationsTableName: 'migrations',
    synchronize: false,
    enableWAL: true,
    timeout: SQLITE_BUSY_TIMEOUT_MS,
    prepareDatabase: (conn: { pragma: (s: string) => unknown }) => {
      conn.pragma('foreign_keys = ON');
      conn.pragma('synchronous = NORMAL');
    },
  };
}

/**
 * The database holds every conversation: readable and writable by its owner only (like the
 * session secret), whatever the umask. SQLite gives its -wal and -shm files the database file's
 * permissions when it creates them; ones left by an older version are narrowed too. A file this
 * process may not chmod (another owner, a read-only mount) is left as it is.
 */
function ownerOnly(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`]) {
    try {
      if (existsSync(file)) chmodSync(file, 0o600);
    } catch {
      // Not ours to change: the operator's setup decides.
    }
  }
}
