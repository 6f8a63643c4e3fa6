/**
 * Writes a migration for each dialect from the difference between the entities and a
 * database migrated to the current head. Run after `npm run build:server`:
 *   node dist/server/database/generate-migration.js <Name>
 * It uses a throwaway SQLite file and the PostgreSQL database named by PG_URL
 * (default postgres://postgres@127.0.0.1:5432/test, in a fresh scratch database).
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';

async function pendingSql(db: DatabaseConfig): Promise<{ up: string[]; down: string[] }> {
  const ds = new DataSource(dataSourceOptions(db));
  await ds.initialize();
  try {
    await ds.runMigrations({ transaction: 'each' });
    const log = await ds.driver.createSchemaBuilder().log();
    return {
      up: log.upQueries.map((q) => q.query),
      down: log.downQueries.map((q) => q.query).reverse(),
    };
  } finally {
    await ds.destroy();
  }
}

function render(className: string, sql: { up: string[]; down: string[] }): string {
  const lines = (qs: string[]) => qs.map((q) => `    await q.query(${JSON.stringify(q)});`).join('\n');
  return `import type { MigrationInterface, QueryRunner } from 'typeorm';

export class ${className} implements MigrationInterface {
  name = '${className}';

  async up(q: QueryRunner): Promise<void> {
${lines(sql.up)}
  }

  async down(q: QueryRunner): Promise<void> {
${lines(sql.down)}
  }
}
`;
}

async function main(): Promise<void> {
  const name = process.argv[2];
  if (!name || !/^[A-Z][A-Za-z0-9]+$/.test(name)) throw new Error('usage: generate-migration <PascalCaseName>');
  const stamp = Date.now();
  const className = `${name}${stamp}`;
  const outRoot = join(__dirname, '..', '..', '..', 'server', 'src', 'database', 'migrations');

  const sqlite = await pendingSql({ type: 'sqlite', path: join(mkdtempSync(join(tmpdir(), 'parley-gen-')), 'gen.sqlite') });
  const pgBase = process.env.PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const scratch = `parley_gen_${stamp}`;
  const admin = new DataSource({ type: 'postgres', url: pgBase });
  await admin.initialize();
  await admin.query(`CREATE DATABASE ${scratch}`);
  let postgres: { up: string[]; down: string[] };
  try {
    const url = new URL(pgBase);
    url.pathname = `/${scratch}`;
    postgres = await pendingSql({ type: 'postgres', url: url.toString() });
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${scratch} WITH (FORCE)`);
    await admin.destroy();
  }
  for (const [dialect, sql] of [['sqlite', sqlite], ['postgres', postgres]] as const) {
    if (sql.up.length === 0) { console.log(`${dialect}: schema already matches the entities`); continue; }
    const file = join(outRoot, dialect, `${stamp}-${name}.ts`);
    writeFileSync(file, render(className, sql));
    console.log(`${dialect}: wrote ${file}; add ${className} to ${dialect}/index-list.ts`);
  }
}

main().catch((err: unknown) => { console.error(err); process.exit(1); });
