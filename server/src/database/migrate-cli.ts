/** `npm run migrate`: applies pending migrations to the configured database and exits. */
import { DataSource } from 'typeorm';
import { loadConfig } from '../config/app-config.js';
import { dataSourceOptions } from './data-source-options.js';
import { runMigrationsOnce } from './run-migrations.js';

async function main(): Promise<void> {
  const config = loadConfig(process.env);
  const ds = new DataSource(dataSourceOptions(config.database));
  await ds.initialize();
  try {
    const applied = await runMigrationsOnce(ds);
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'database is up to date');
  } finally {
    await ds.destroy();
  }
}

main().catch((err: unknown) => { console.error(err instanceof Error ? err.message : err); process.exit(1); });
