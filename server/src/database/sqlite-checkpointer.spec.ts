import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { waitFor } from '../testing/wait.js';
import { SqliteCheckpointer, SqliteCheckpointService } from './sqlite-checkpointer.js';

describe('SqliteCheckpointer', () => {
  let dir: string;
  let db: Database.Database;
  let checkpointer: SqliteCheckpointer | undefined;
  const write = (n: number, size = 100): void => {
    const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
    for (let i = 0; i < n; i++) insert.run('x'.repeat(size)); // one commit each
  };
  /** WAL frames now, as SQLite counts them (the PASSIVE checkpoint on a fresh connection copies nothing new). */
  const walFrames = (): number => {
    const other = new Database(join(dir, 'db.sqlite'));
    try {
      return (other.pragma('wal_checkpoint(PASSIVE)') as { log: number }[])[0].log;
    } finally {
      other.close();
    }
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-ckpt-'));
    db = new Database(join(dir, 'db.sqlite'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  });
  afterEach(async () => {
    await checkpointer?.stop();
    checkpointer = undefined;
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('turns off the checkpoint on the committing connection and copies the WAL in its worker', async () => {
    checkpointer = new SqliteCheckpointer(db, join(dir, 'db.sqlite'), { intervalMs: 20, restartFrames: 1_000_000 });
    checkpointer.start();
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(0);
    write(300, 2000);
    const last = await waitFor('a complete checkpoint by the worker', () => {
      const r = checkpointer!.status().last;
      return r && r.log >= 300 && r.checkpointed === r.log ? r : undefined;
    }, 10_000, 10);
    expect(last.busy).toBe(0);
    // The worker did it all: the main connection never checkpointed, so the WAL never restarted.
    expect(checkpointer.status().mainCheckpoints).toBe(0);
    expect(walFrames()).toBeGreaterThanOrEqual(300);
    // And what it copied is in the database file: a connection reading without the WAL sees it.
    const reader = new Database(join(dir, 'db.sqlite'), { readonly: true });
    expect(reader.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 300 });
    reader.close();
  });

  it('finishes the checkpoint on the main connection once the WAL passes restartFrames, so the WAL starts over', () => {
    // The worker idles here (one checkpoint a minute): its reports are given by hand.
    checkpointer = new SqliteCheckpointer(db, join(dir, 'db.sqlite'), { intervalMs: 60_000, restartFrames: 150 });
    checkpointer.start();
    write(100, 2000);
    checkpointer.handleReport({ busy: 0, log: 100, checkpointed: 100 });
    expect(checkpointer.status().mainCheckpoints).toBe(0);
    write(100, 2000);
    checkpointer.handleReport({ busy: 0, log: 200, checkpointed: 180 });
    expect(checkpointer.status().mainCheckpoints).toBe(1);
    write(1);
    // The write after it restarted the WAL from its first frame.
    expect(walFrames()).toBeLessThan(10);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 201 });
  });

  it('leaves the WAL alone below restartFrames, and inside a transaction', () => {
    checkpointer = new SqliteCheckpointer(db, join(dir, 'db.sqlite'), { intervalMs: 60_000, restartFrames: 150 });
    checkpointer.start();
    write(100, 2000);
    checkpointer.handleReport({ busy: 0, log: 100, checkpointed: 100 });
    db.exec('BEGIN');
    write(100, 2000);
    checkpointer.handleReport({ busy: 0, log: 200, checkpointed: 100 });
    db.exec('COMMIT');
    expect(checkpointer.status().mainCheckpoints).toBe(0);
    write(1);
    expect(walFrames()).toBeGreaterThanOrEqual(100);
  });

  it('scrubs the WAL to nothing when asked; a reader in the way delays it (the caller is answered meanwhile) until it is gone', async () => {
    const wal = join(dir, 'db.sqlite-wal');
    checkpointer = new SqliteCheckpointer(db, join(dir, 'db.sqlite'), { intervalMs: 50, restartFrames: 1_000_000, scrubWaitMs: 300 });
    checkpointer.start();
    write(50, 2000);
    expect(statSync(wal).size).toBeGreaterThan(50 * 2000);
    await checkpointer.scrub();
    expect(statSync(wal).size).toBe(0);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 50 });

    // A reader holding a snapshot of the WAL keeps it from being emptied: scrub() resolves after scrubWaitMs.
    write(20, 2000);
    const reader = new Database(join(dir, 'db.sqlite'));
    reader.exec('BEGIN');
    reader.prepare('SELECT count(*) AS n FROM t').get();
    const began = Date.now();
    await checkpointer.scrub();
    expect(Date.now() - began).toBeGreaterThanOrEqual(250);
    expect(statSync(wal).size).toBeGreaterThan(0);
    // Writes go on meanwhile, and once the reader ends the worker's next tries empty it.
    write(5);
    reader.exec('COMMIT');
    reader.close();
    await waitFor('the scrub retried', () => statSync(wal).size === 0, 10_000, 20);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 75 });
  });

  it('gives the checkpoint back to SQLite when the worker stops', async () => {
    checkpointer = new SqliteCheckpointer(db, join(dir, 'db.sqlite'), { intervalMs: 20 });
    checkpointer.start();
    expect(checkpointer.mode).toBe('worker');
    await checkpointer.stop();
    expect(checkpointer.mode).toBe('sqlite');
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });

  it('gives the checkpoint back to SQLite when the worker fails', async () => {
    // A worker that cannot open its database (fileMustExist) fails at once.
    checkpointer = new SqliteCheckpointer(db, join(dir, 'missing.sqlite'), { intervalMs: 20 });
    checkpointer.start();
    await waitFor('the fallback', () => checkpointer!.mode === 'sqlite', 10_000, 10);
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(1000);
  });
});

describe.each(dialects())('the application on %s', (dialect) => {
  let t: TestApp;
  beforeEach(async () => { t = await createTestApp(dialect); });
  afterEach(async () => { await t.close(); });

  it(dialect === 'sqlite' ? 'checkpoints in the worker, and stops it at shutdown' : 'runs no checkpointer', async () => {
    const service = t.app.get(SqliteCheckpointService);
    if (dialect !== 'sqlite') {
      expect(service.checkpointer).toBeUndefined();
      return;
    }
    const checkpointer = service.checkpointer!;
    expect(checkpointer.mode).toBe('worker');
    const { token } = await t.newSession();
    await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${token}`).send({ message: 'hello' }).expect(200);
    // A report that came after the chat, with every frame in the WAL (the chat's writes) copied.
    const before = checkpointer.status().last;
    await waitFor('a checkpoint after the chat', () => {
      const last = checkpointer.status().last;
      return last !== before && last && last.log > 0 && last.checkpointed === last.log;
    }, 10_000, 50);
    await service.beforeApplicationShutdown();
    expect(checkpointer.mode).toBe('sqlite');
  });
});
