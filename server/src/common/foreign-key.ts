/**
 * A write that referred to a row deleted meanwhile: PostgreSQL's 23503, SQLite's SQLITE_CONSTRAINT_FOREIGNKEY
 * (TypeORM's QueryFailedError carries the driver's code). Nothing was written.
 */
export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as { code?: unknown; driverError?: { code?: unknown } } | null;
  const code = e?.code ?? e?.driverError?.code;
  return code === '23503' || code === 'SQLITE_CONSTRAINT_FOREIGNKEY';
}
