// @ts-check
/**
 * WAL checkpoints for the SQLite database, in a worker thread with its own connection (started
 * by sqlite-checkpointer.ts): the page copying and the fsync it ends with happen here, never on
 * the event loop. PASSIVE checkpoints only: they never wait for, nor block, the server's writes.
 *
 * Plain JavaScript for the same reason as files/extract.worker.mjs: it must run both from
 * dist/server/database/ (copied there by the build:server script) and from the sources under Vitest.
 *
 * Input (workerData): { path, intervalMs }; message 'stop' closes the connection and ends the thread.
 * Output (one message per checkpoint): { busy, log, checkpointed } as PRAGMA wal_checkpoint returns them.
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
/** @type {typeof import('better-sqlite3')} */
const Database = require('better-sqlite3');

/** @type {{ path: string; intervalMs: number }} */
const { path, intervalMs } = workerData;
const db = new Database(path, { fileMustExist: true });
// The same durability as the server's connection: the checkpoint syncs the database file.
db.pragma('synchronous = NORMAL');
// This connection never writes, so it never checkpoints on its own either.
db.pragma('wal_autocheckpoint = 0');

const timer = setInterval(() => {
  const [result] = /** @type {{ busy: number; log: number; checkpointed: number }[]} */ (db.pragma('wal_checkpoint(PASSIVE)'));
  parentPort?.postMessage(result);
}, intervalMs);

parentPort?.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort?.close();
});
