/** `npm run migrate`: applies pending migrations to the configured database and exits. */
import { DataSource } from 'typeorm';
import { loadConfig } from '../config/app-config.js';
import { misspeltSettings } from '../config/misspelt-settings.js';
import { dataSourceOptions } from './data-source-options.js';
import { migrationTarget } from './migration-target.js';
import { runMigrationsOnce } from './run-migrations.js';

async function main(): Promise<void> {
  // As at start (main.ts): names only, a value may be a secret.
  for (const { name, suggestion } of misspeltSettings(process.env)) {
    console.error(`${name} is not a Parley setting and is ignored; did you mean ${suggestion}?`);
  }
  const config = loadConfig(process.env);
  console.log(`migrating ${migrationTarget(config.database)}`);
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
