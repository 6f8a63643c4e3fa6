/**
 * Whether an error means a backing service (PostgreSQL, Redis) is unreachable or could not serve this
 * statement for now (a lock held elsewhere), so the answer is 503 SERVICE_UNAVAILABLE (retry later)
 * rather than 500 (our bug).
 */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH']);
// SQLSTATE: 08xxx connection exceptions, 57P01-57P03 server shutting down / not accepting, 53300 too many
// connections; and what refuses a new connection to a database that is there in the configuration: 3D000 (it
// no longer exists), 28000 / 28P01 (its role or password refused). And what a retry may not meet again: 55P03
// a lock not granted in lock_timeout, 57014 a statement cancelled (statement_timeout, pg_cancel_backend),
// 40001 / 40P01 a serialization failure or deadlock.
const PG_OUTAGE = /^(08...|57P0[123]|53300|3D000|28000|28P01|55P03|57014|40001|40P01)$/;
const MESSAGES = [
  /Connection terminated/i,
  /timeout exceeded when trying to connect/i,
  /Client has encountered a connection error/i,
  /Connection is closed/i, // ioredis
  /enableOfflineQueue options is false/i, // ioredis while disconnected
  /Command timed out/i, // ioredis commandTimeout
  /Reached the max retries per request limit/i, // ioredis
  /the database system is (starting up|shutting down)/i,
  // 55000 at connect time (ALLOW_CONNECTIONS false); the code alone is too broad to mean an outage.
  /is not currently accepting connections/i,
];

export function isDependencyOutage(err: unknown, depth = 0): boolean {
  if (depth > 4 || typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; message?: unknown; name?: unknown; driverError?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && (NETWORK_CODES.has(e.code) || PG_OUTAGE.test(e.code))) return true;
  if (e.name === 'MaxRetriesPerRequestError') return true;
  if (typeof e.message === 'string' && MESSAGES.some((m) => m.test(e.message as string))) return true;
  return isDependencyOutage(e.driverError, depth + 1) || isDependencyOutage(e.cause, depth + 1);
}

// better-sqlite3's SqliteError, Node's file system errors (EDQUOT: the user's disk quota, full all the
// same), and PostgreSQL's 53100 disk_full. Not 53200 out_of_memory: that is not the disk.
const STORAGE_FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT', '53100']);

/**
 * The `details` of a 503 that storage space caused (a full disk, uploads paused near it): unlike an outage, a retry in
 * seconds does not help, and a client can say so (the SPA did say "briefly unavailable").
 */
export const STORAGE_FULL_DETAILS = { reason: 'storage_full' } as const;

/**
 * Whether an error means the database's or the data directory's disk is full, so the answer is 503
 * SERVICE_UNAVAILABLE (retry later, once an operator has freed space) rather than 500 (our bug).
 */
export function isStorageFull(err: unknown, depth = 0): boolean {
  if (depth > 4 || typeof err !== 'object' || err === null) return false;
  const e = err as { code?: unknown; driverError?: unknown; cause?: unknown };
  if (typeof e.code === 'string' && STORAGE_FULL_CODES.has(e.code)) return true;
  return isStorageFull(e.driverError, depth + 1) || isStorageFull(e.cause, depth + 1);
}
