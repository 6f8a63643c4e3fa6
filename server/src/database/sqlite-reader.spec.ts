import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteReader } from './sqlite-reader.js';

describe('SqliteReader', () => {
  let dir: string;
  let db: Database.Database;
  let reader: SqliteReader;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'parley-reader-'));
    db = new Database(join(dir, 'db.sqlite'));
    db.pragma('journal_mode = WAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
    reader = new SqliteReader(join(dir, 'db.sqlite'));
    reader.start();
  });
  afterEach(async () => {
    await reader.stop();
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads what the main connection committed, with parameters, in the order asked', async () => {
    const insert = db.prepare('INSERT INTO t (body) VALUES (?)');
    for (const body of ['apple', 'banana', 'cherry']) insert.run(body);
    const [like, one] = await Promise.all([
      reader.all<{ body: string }>('SELECT body FROM t WHERE body LIKE ? ORDER BY id', ['%an%']),
      reader.all<{ n: number }>('SELECT count(*) AS n FROM t', []),
    ]);
    expect(like).toEqual([{ body: 'banana' }]);
    expect(one).toEqual([{ n: 3 }]);
    insert.run('date');
    expect(await reader.all('SELECT count(*) AS n FROM t', [])).toEqual([{ n: 4 }]);
  });

  it('leaves the event loop free while it reads: the main thread goes on meanwhile', async () => {
    // A read of some hundreds of milliseconds; run on the main connection, nothing else could run until it ended.
    const slow = reader.all<{ n: number }>('WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 3000000) SELECT count(*) AS n FROM c', []);
    let turns = 0;
    let isDone = false;
    void slow!.then(() => { isDone = true; });
    while (!isDone && turns < 1_000_000) {
      await new Promise((resolve) => setImmediate(resolve));
      turns++;
    }
    expect(await slow).toEqual([{ n: 3000000 }]);
    expect(turns).toBeGreaterThan(10);
  });

  it('rejects a failing read with SQLite\'s message, and goes on with the next', async () => {
    await expect(reader.all('SELECT nope FROM t', [])).rejects.toThrow(/no such column: nope/);
    expect(await reader.all('SELECT 1 AS one', [])).toEqual([{ one: 1 }]);
  });

  it('never writes: its connection is read-only', async () => {
    await expect(reader.all('INSERT INTO t (body) VALUES (?) RETURNING id', ['x'])).rejects.toThrow(/readonly/);
    expect(db.prepare('SELECT count(*) AS n FROM t').get()).toEqual({ n: 0 });
  });

  it('answers the reads sent before stop, then says none runs (the caller reads on the main connection)', async () => {
    const before = reader.all('SELECT 2 AS two', []);
    await reader.stop();
    expect(await before).toEqual([{ two: 2 }]);
    expect(reader.isRunning).toBe(false);
    expect(reader.all('SELECT 1', [])).toBeUndefined();
  });
});
