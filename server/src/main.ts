import 'reflect-metadata';
import { createApp } from './app.factory.js';
import { loadConfig } from './config/app-config.js';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    // A bad deploy fails at start, naming each bad variable.
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
  const { app, logger } = await createApp(config);
  await app.listen(config.port, config.host);
  logger.info({ port: config.port, database: config.database.type, instance: config.instanceId }, `Parley listening on http://localhost:${config.port}`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
