import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { Logger } from '@nestjs/common';
import pg from 'pg';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config.js';
import { ENTITIES } from './entities.js';
import { POSTGRES_MIGRATIONS } from './migrations/postgres/index-list.js';
import { SQLITE_MIGRATIONS } from './migrations/sqlite/index-list.js';

/** Busy writers wait this long for SQLite's lock instead of failing with SQLITE_BUSY. */
const SQLITE_BUSY_TIMEOUT_MS = 5_000;
/** A PostgreSQL statement waits this long for a lock (a row, a table) before it fails with 55P03. */
export const LOCK_TIMEOUT_MS = 5_000;
/**
 * A PostgreSQL statement of the app runs at most this long, then fails with 57014 (503, nothing changed): a
 * runaway query (a search over a huge table, a plan gone wrong) gives its connection back instead of holding
 * it, and with ten of them the whole pool. Every query of the app takes milliseconds; the longest, erasing a
 * large session, well under a second. Migrations run without it (run-migrations.ts): an index on a big table
 * may take minutes.
 */
export const STATEMENT_TIMEOUT_MS = 30_000;

const pgLogger = new Logger('Database');

/**
 * Every new PostgreSQL connection has a listener for its errors for its whole life. node-postgres pools
 * listen only while a connection is idle; TypeORM listens once its promise for the connection has
 * settled. A connection killed between the two (pg_terminate_backend, a failover: its "ready" and its
 * fatal error in one read) emitted an error with no listener, and Node ended the process (found by
 * review: two instances under load, both killed). The connection is dropped as before; the request
 * that used it fails with 503.
 */
function listenForErrors(client: { on(event: 'error', listener: (err: Error) => void): unknown }): void {
  client.on('error', (err: Error & { code?: string }) => {
    pgLogger.warn({ code: err.code, err: err.message }, 'a database connection failed');
  });
}

/**
 * One set of migrations per dialect, both generated from the same entities
 * (see generate-migration.ts); a test proves each migrated schema matches them.
 * `synchronize` is never on.
 */
export function dataSourceOptions(db: DatabaseConfig, overrides: { poolSize?: number; statementTimeoutMs?: number } = {}): DataSourceOptions {
  if (db.type === 'postgres') {
    timestampsInUtc();
    return {
      type: 'postgres',
      url: db.url,
      entities: ENTITIES,
      migrations: POSTGRES_MIGRATIONS,
      migrationsTableName: 'migrations',
      synchronize: false,
      poolSize: overrides.poolSize ?? 10,
      // A lost database makes queries fail fast (503) instead of queueing forever.
      // The session's own zone too, for any comparison the server makes with its clock. A row locked
      // by someone else (an operator's open transaction) is waited for LOCK_TIMEOUT_MS, then the
      // statement fails (503, a save retried) instead of holding its connection, and then the pool.
      extra: {
        connectionTimeoutMillis: 5_000,
        idleTimeoutMillis: 30_000,
        options: `-c TimeZone=UTC -c lock_timeout=${LOCK_TIMEOUT_MS} -c statement_timeout=${overrides.statementTimeoutMs ?? STATEMENT_TIMEOUT_MS}`,
        onConnect: listenForErrors,
      },
    };
  }
  if (db.path !== ':memory:') {
    // Owner-only, as the files in it (created so; an existing directory is the operator's).
    mkdirSync(dirname(db.path), { recursive: true, mode: 0o700 });
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
      // What is deleted (an erased session, a purged one, a deleted conversation) is overwritten in the file, not left
      // readable in free pages until reused (found by review: an erased file's text stayed in parley.sqlite).
      conn.pragma('secure_delete = ON');
    },
  };
}

/**
 * The schema's times are PostgreSQL `timestamp` columns (no zone), written and read as UTC. node-postgres
 * writes a Date as the process's local time and reads such a column as local time: an instance with
 * TZ set (America/New_York) stored its rows' times five hours off and read the others' five hours off,
 * so lists sorted wrongly across instances and another instance's live reply looked past its lease
 * (marked `interrupted` while it streamed). Process-wide settings of node-postgres, as TypeORM uses it.
 */
function timestampsInUtc(): void {
  pg.defaults.parseInputDatesAsUTC = true;
  const withZone = pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ, 'text') as (text: string) => Date;
  pg.types.setTypeParser(pg.types.builtins.TIMESTAMP, (text: string) => withZone(`${text}+00`));
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
