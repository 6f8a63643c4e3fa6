import { isPostgresReachable, PG_ADMIN_URL } from './postgres.js';
import { buildTestWorkers } from './worker-build.js';

/**
 * Compiles the worker threads' code for the run (worker-build.ts), and decides once whether the
 * PostgreSQL half of the database tests runs. Locally an unreachable server skips it with a
 * visible message; with REQUIRE_POSTGRES=1 (CI) it fails.
 */
export default async function setup({ provide }: { provide: (key: string, value: unknown) => void }): Promise<void> {
  buildTestWorkers();
  const reachable = await isPostgresReachable();
  if (!reachable) {
    if (process.env.REQUIRE_POSTGRES === '1') throw new Error(`PostgreSQL is required (REQUIRE_POSTGRES=1) but ${PG_ADMIN_URL} is unreachable`);
    console.warn(`\n*** PostgreSQL at ${PG_ADMIN_URL} is unreachable: PostgreSQL variants of the database tests are SKIPPED ***\n`);
  }
  provide('postgresReachable', reachable);
}

declare module 'vitest' {
  export interface ProvidedContext { postgresReachable: boolean }
}
