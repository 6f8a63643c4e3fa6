import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inject } from 'vitest';
import type { DatabaseConfig } from '../config/app-config.js';
import { createScratchDatabase } from './postgres.js';

export type Dialect = 'sqlite' | 'postgres';

/** The dialects every database test runs on: both, unless PostgreSQL is unreachable locally (announced in global setup). */
export function dialects(): Dialect[] {
  return inject('postgresReachable') ? ['sqlite', 'postgres'] : ['sqlite'];
}

export interface TestDatabase { config: DatabaseConfig; dir: string; cleanup: () => Promise<void> }

/** A fresh, empty database of the given dialect (a temp SQLite file, or a scratch PostgreSQL database). */
export async function createTestDatabase(dialect: Dialect): Promise<TestDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'parley-test-'));
  if (dialect === 'sqlite') {
    return { config: { type: 'sqlite', path: join(dir, 'test.sqlite') }, dir, cleanup: () => { rmSync(dir, { recursive: true, force: true }); return Promise.resolve(); } };
  }
  const pg = await createScratchDatabase();
  return {
    config: { type: 'postgres', url: pg.url },
    dir,
    cleanup: async () => { await pg.drop(); rmSync(dir, { recursive: true, force: true }); },
  };
}
