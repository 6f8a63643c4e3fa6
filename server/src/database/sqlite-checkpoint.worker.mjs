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
 *
 * Message { scrub: n } (rows were erased; n counts the requests): a TRUNCATE checkpoint, which leaves the WAL file empty, so
 * the erased text no longer lies in its old frames (secure_delete zeroes it in the database file
 * only). It takes the write lock: run right after a PASSIVE one it has only the latest frames to
 * copy, and it waits at most SCRUB_WAIT_MS for readers, so the server's writes wait about as long
 * at worst. Busy, it is tried again at every interval until it succeeds; output
 * { busy, log, checkpointed, scrubbed: n } once it has, n the last request it covers.
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


/**
 * How long a scrub waits for the lock and for readers before it gives up until the next interval. It
 * holds SQLite's write lock while it waits for readers, and the server's writes (on the event loop)
 * wait meanwhile: short, so that a long read costs a retry rather than a stalled stream.
 */
const SCRUB_WAIT_MS = 20;

/** @param {string} mode */
const checkpoint = (mode) => /** @type {{ busy: number; log: number; checkpointed: number }[]} */ (db.pragma(`wal_checkpoint(${mode})`))[0];

/** The last scrub asked for, and the last one done. */
let scrubAsked = 0;
let scrubDone = 0;

/** The TRUNCATE checkpoint a scrub asks for; true once it has succeeded. */
function scrub() {
  const covers = scrubAsked;
  checkpoint('PASSIVE');
  db.pragma(`busy_timeout = ${SCRUB_WAIT_MS}`);
  try {
    const result = checkpoint('TRUNCATE');
    if (result.busy !== 0) return false;
    scrubDone = covers;
    parentPort?.postMessage({ ...result, scrubbed: covers });
    return true;
  } finally {
    db.pragma('busy_timeout = 5000');
  }
}

const timer = setInterval(() => {
  if (scrubDone < scrubAsked && scrub()) return;
  parentPort?.postMessage(checkpoint('PASSIVE'));
}, intervalMs);

parentPort?.on('message', (message) => {
  if (typeof message === 'object' && message !== null && typeof message.scrub === 'number') {
    scrubAsked = Math.max(scrubAsked, message.scrub);
    if (scrubDone < scrubAsked) scrub();
    return;
  }
  if (message !== 'stop') return;
  clearInterval(timer);
  db.close();
  parentPort?.close();
});
