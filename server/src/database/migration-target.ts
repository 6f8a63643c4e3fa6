import { parse } from 'pg-connection-string';
import type { DatabaseConfig } from '../config/app-config.js';

/**
 * The database a run migrates, without its credentials: a misspelt DATABASE_URL (DATABSE_URL) would
 * otherwise migrate the SQLite default and report success. Read by pg's own parser, as the connection is.
 */
export function migrationTarget(database: DatabaseConfig): string {
  if (database.type === 'sqlite') return `SQLite at ${database.path}`;
  try {
    const { host, port, database: name } = parse(database.url);
    return `PostgreSQL database ${name || '(default)'} at ${host || 'the default host'}${port ? `:${port}` : ''}`;
  } catch {
    return 'PostgreSQL (DATABASE_URL)';
  }
}
