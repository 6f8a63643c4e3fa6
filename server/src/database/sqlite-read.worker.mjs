// @ts-check
/**
 * Reads for the SQLite database that scan much text (a search through a session's messages), in a
 * worker thread with its own read-only connection (started by sqlite-reader.ts): better-sqlite3 is
 * synchronous, and such a scan on the event loop stalled every stream of every user for its whole
 * length (225 ms for a search through 10,000 answers of 3 KB). In WAL mode this connection reads
 * the last committed state, never waiting for the server's writes nor blocking them.
 *
 * Plain JavaScript for the same reason as sqlite-checkpoint.worker.mjs: it must run both from
 * dist/server/database/ (copied there by the build:server script) and from the sources under Vitest.
 *
 * Input (workerData): { path }. Messages: { id, sql, params } → { id, rows } or { id, error };
 * 'stop' closes the connection and ends the thread. One query at a time, in the order received.
 */
import { createRequire } from 'node:module';
import { parentPort, workerData } from 'node:worker_threads';

const require = createRequire(import.meta.url);
/** @type {typeof import('better-sqlite3')} */
const Database = require('better-sqlite3');

/** @type {{ path: string }} */
const { path } = workerData;
const db = new Database(path, { readonly: true, fileMustExist: true });
/** Statements by SQL text: the server sends a few fixed shapes. */
const statements = new Map();

parentPort?.on('message', (message) => {
  if (message === 'stop') {
    db.close();
    parentPort?.close();
    return;
  }
  const { id, sql, params } = /** @type {{ id: number; sql: string; params: unknown[] }} */ (message);
  try {
    let statement = statements.get(sql);
    if (!statement) {
      statement = db.prepare(sql);
      statements.set(sql, statement);
    }
    parentPort?.postMessage({ id, rows: statement.all(...params) });
  } catch (err) {
    parentPort?.postMessage({ id, error: err instanceof Error ? err.message : String(err) });
  }
});
