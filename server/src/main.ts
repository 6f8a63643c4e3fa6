import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { createApp } from './app.factory.js';
import { hostLookupProblem, listenProblem, loadConfig } from './config/app-config.js';
import { type MisspeltSetting, misspeltSettings } from './config/misspelt-settings.js';
import { modelHint } from './config/model-hint.js';
import { GenerationService } from './chat/generation.service.js';
import { ShutdownService } from './health/shutdown.service.js';
import { exitAfterLogs } from './common/logger.js';
import { MAX_TIMER_MS } from './common/max-timer.js';

async function main(): Promise<void> {
  // A misspelt setting (SESSION_SECRETT) is otherwise ignored without a word. Names only: a value may be a secret.
  const misspelt = misspeltSettings(process.env);
  const hint = ({ name, suggestion }: MisspeltSetting): string => `${name} is not a Parley setting and is ignored; did you mean ${suggestion}?`;
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    // A bad deploy fails at start, naming each bad variable.
    console.error(err instanceof Error ? err.message : err);
    for (const m of misspelt) console.error(hint(m));
    process.exit(1);
  }
  // A HOST name that does not resolve fails here, naming HOST, before the migrations run (not as a getaddrinfo stack at listen).
  const hostProblem = await hostLookupProblem(config.host, config.port);
  if (hostProblem !== undefined) {
    console.error(`Invalid env: ${hostProblem}`);
    for (const m of misspelt) console.error(hint(m));
    process.exit(1);
  }
  const { app, logger } = await createApp(config);
  for (const m of misspelt) logger.warn({ variable: m.name, suggestion: m.suggestion }, hint(m));
  const model = modelHint(process.env, config.llm);
  if (model) logger.warn(model);
  try {
    await app.listen(config.port, config.host);
  } catch (err) {
    // An address not on this machine, a port in use: one line naming the variable, not a stack.
    const problem = listenProblem(err, config);
    if (problem === undefined) throw err;
    logger.fatal({ host: config.host, port: config.port }, problem);
    console.error(`Cannot listen: ${problem}`);
    exitAfterLogs(logger, 1);
    return;
  }
  // The port bound, not the one asked for: PORT=0 takes any free one.
  const { address, port } = app.getHttpServer().address() as AddressInfo;
  logger.info({ port, address, database: config.database.type, instance: config.instanceId }, `Parley listening on http://localhost:${port}`);

  // SIGTERM (docker stop, Kubernetes): stop taking requests, let running generations finish
  // for SHUTDOWN_GRACE_MS (then they are saved as interrupted), close, exit 0.
  const shutdown = app.get(ShutdownService);
  // Replies run to their end (or are saved as interrupted) while everything else is still up.
  const generations = app.get(GenerationService);
  shutdown.register('generations', (graceMs) => generations.drain(graceMs));
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal, graceMs: config.shutdownGraceMs }, 'shutting down');
    // Whatever hangs, the process is gone a little after the grace period.
    setTimeout(() => { logger.error('shutdown took too long; exiting'); exitAfterLogs(logger, 1); }, Math.min(config.shutdownGraceMs + 10_000, MAX_TIMER_MS)).unref();
    shutdown.drain()
      .then(() => app.close())
      .then(() => { logger.info('bye'); exitAfterLogs(logger, 0); })
      .catch((err: unknown) => { logger.error({ err }, 'shutdown failed'); exitAfterLogs(logger, 1); });
  };
  // Kept for every signal, not once: a second one, with no handler left, ended the process at once, undrained, its
  // buffered logs lost. Ctrl+C on `npm start` sends one: the terminal's SIGINT reaches npm and node, and npm passes
  // its own on; a process manager stopping the whole group does the same with SIGTERM.
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
