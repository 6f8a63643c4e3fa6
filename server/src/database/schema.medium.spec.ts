import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataSource } from 'typeorm';
import { createTestDatabase, dialects, type TestDatabase } from '../testing/dialects.js';
import { dataSourceOptions } from './data-source-options.js';
import { runMigrationsOnce } from './run-migrations.js';

describe.each(dialects())('migrations on %s', (dialect) => {
  let db: TestDatabase;
  beforeEach(async () => { db = await createTestDatabase(dialect); });
  afterEach(async () => { await db.cleanup(); });

  it('produce exactly the schema the entities describe', async () => {
    const ds = await new DataSource(dataSourceOptions(db.config)).initialize();
    try {
      expect(await runMigrationsOnce(ds)).not.toHaveLength(0);
      const pending = await ds.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((q) => q.query)).toEqual([]);
      expect(ds.options.synchronize).toBe(false);
    } finally {
      await ds.destroy();
    }
  });

  it('run once when several instances start together', async () => {
    const sources = await Promise.all([1, 2, 3].map(() => new DataSource(dataSourceOptions(db.config)).initialize()));
    try {
      const applied = await Promise.all(sources.map((s) => runMigrationsOnce(s)));
      expect(applied.flat().length).toBe(applied.find((a) => a.length > 0)!.length);
    } finally {
      await Promise.all(sources.map((s) => s.destroy()));
    }
  });

  it.runIf(dialect === 'sqlite')('take over a lock file naming this process when it holds none (a container restarted as PID 1 after a kill)', async () => {
    if (db.config.type !== 'sqlite') return;
    writeFileSync(`${db.config.path}.migrate-lock`, String(process.pid));
    const ds = await new DataSource(dataSourceOptions(db.config)).initialize();
    try {
      expect(await runMigrationsOnce(ds)).not.toHaveLength(0);
      expect(existsSync(`${db.config.path}.migrate-lock`)).toBe(false);
    } finally {
      await ds.destroy();
    }
  }, 20_000);

  it.runIf(dialect === 'sqlite')('uses WAL journaling on SQLite', async () => {
    const ds = await new DataSource(dataSourceOptions(db.config)).initialize();
    try {
      expect(await ds.query('PRAGMA journal_mode')).toEqual([{ journal_mode: 'wal' }]);
      expect(await ds.query('PRAGMA foreign_keys')).toEqual([{ foreign_keys: 1 }]);
    } finally {
      await ds.destroy();
    }
  });


  it.runIf(dialect === 'sqlite')('give replies ended at a past boot their creation time back instead of 5760-09-13', async () => {
    const options = dataSourceOptions(db.config);
    const all = options.migrations as (new () => unknown)[];
    const fix = all.findIndex((m) => m.name === 'InterruptedTimes1796040000000');
    expect(fix).toBeGreaterThan(0);
    // The database as the release before the fix left it.
    const before = await new DataSource({ ...options, migrations: all.slice(0, fix) }).initialize();
    try {
      await runMigrationsOnce(before);
      await before.query("INSERT INTO sessions (id, created_at, last_accessed) VALUES ('s', '2026-11-30 10:00:00.000', '2026-11-30 10:00:00.000')");
      await before.query("INSERT INTO conversations (id, session_id, created_at, updated_at) VALUES ('c', 's', '2026-11-30 10:00:00.000', '2026-11-30 10:00:00.000')");
      const row = "INSERT INTO messages (id, conversation_id, position, role, status, created_at, updated_at) VALUES (?, 'c', ?, 'assistant', ?, '2026-11-30 10:00:01.000', ?)";
      await before.query(row, ['cut', 0, 'interrupted', '5760-09-13 00:00:00.000']);
      await before.query(row, ['fine', 1, 'interrupted', '2026-11-30 10:00:05.000']);
    } finally {
      await before.destroy();
    }
    const after = await new DataSource(options).initialize();
    try {
      expect(await runMigrationsOnce(after)).toHaveLength(all.length - fix);
      expect(await after.query('SELECT id, updated_at FROM messages ORDER BY position')).toEqual([
        { id: 'cut', updated_at: '2026-11-30 10:00:01.000' }, { id: 'fine', updated_at: '2026-11-30 10:00:05.000' },
      ]);
    } finally {
      await after.destroy();
    }
  });

  /** A query's n-th parameter on this dialect. */
  const p = (n: number): string => (dialect === 'sqlite' ? '?' : `$${n}`);

  /**
   * The database as the release before migration `name` left it: session 's', its conversation 'c', and what `seed`
   * stores. Returns the options (every migration) and that migration's index among them.
   */
  async function databaseBefore(name: string, seed: (before: DataSource) => Promise<void>): Promise<{ options: ReturnType<typeof dataSourceOptions>; at: number }> {
    const options = dataSourceOptions(db.config);
    const all = options.migrations as (new () => unknown)[];
    const at = all.findIndex((m) => m.name === name);
    expect(at).toBeGreaterThan(0);
    const before = await new DataSource({ ...options, migrations: all.slice(0, at) }).initialize();
    try {
      await runMigrationsOnce(before);
      await before.query("INSERT INTO sessions (id, created_at, last_accessed) VALUES ('s', '2026-11-30 10:00:00', '2026-11-30 10:00:00')");
      await before.query("INSERT INTO conversations (id, session_id, created_at, updated_at) VALUES ('c', 's', '2026-11-30 10:00:00', '2026-11-30 10:00:00')");
      await seed(before);
    } finally {
      await before.destroy();
    }
    return { options, at };
  }

  it('fold the text of the messages already stored for search, and leave a streaming one for its end', async () => {
    const { options } = await databaseBefore('MessageSearch1796042653614', async (before) => {
      const row = `INSERT INTO messages (id, conversation_id, position, role, content, status, created_at, updated_at) VALUES (${p(1)}, 'c', ${p(2)}, 'user', ${p(3)}, ${p(4)}, '2026-11-30 10:00:01', '2026-11-30 10:00:01')`;
      // More than one batch of the backfill (500), ids in no particular order.
      for (let i = 0; i < 520; i++) await before.query(row, [`m${String((i * 7919) % 1000).padStart(4, '0')}-${i}`, i, `École N°${i} ΣΟΦΊΑ`, 'complete']);
      await before.query(row, ['live', 600, 'Streaming ÉTÉ', 'streaming']);
    });
    const after = await new DataSource(options).initialize();
    try {
      await runMigrationsOnce(after);
      const rows = await after.query<Array<{ id: string; search_text: string | null }>>('SELECT id, search_text FROM messages ORDER BY position');
      expect(rows).toHaveLength(521);
      expect(rows[0].search_text).toBe('ecole n°0 σοφια');
      expect(rows[519].search_text).toBe('ecole n°519 σοφια');
      expect(rows.filter((r) => r.search_text === null).map((r) => r.id)).toEqual(['live']);
    } finally {
      await after.destroy();
    }
  });

  it('fold the answers already stored with a reasoning model\'s thinking again, without it; nothing else', async () => {
    const { options, at } = await databaseBefore('SearchWithoutThinking1796400000000', async (before) => {
      const row = `INSERT INTO messages (id, conversation_id, position, role, content, status, search_text, created_at, updated_at) VALUES (${p(1)}, 'c', ${p(2)}, ${p(3)}, ${p(4)}, ${p(5)}, ${p(6)}, '2026-11-30 10:00:01', '2026-11-30 10:00:01')`;
      // More than one batch (500) of answers with thinking, ids in no particular order, folded as the release before did.
      for (let i = 0; i < 505; i++) {
        const content = `<think>Pondering ZANZIBAR ${i}</think>\n\nÉcole ${i}`;
        await before.query(row, [`a${String((i * 7919) % 1000).padStart(4, '0')}-${i}`, i, 'assistant', content, 'stopped', content.toLowerCase()]);
      }
      await before.query(row, ['question', 600, 'user', '<think>Mine</think> Tag', 'complete', '<think>mine</think> tag']);
      await before.query(row, ['inline', 601, 'assistant', 'Use <think>X</think>', 'complete', 'use <think>x</think>']);
      await before.query(row, ['live', 602, 'assistant', '<think>Still', 'streaming', null]);
      // Folded as the releases before SearchFoldsSharpS did (ß kept): folded again with "ss" by it.
      await before.query(row, ['sharp', 603, 'user', 'Die GROẞE Straße', 'complete', 'die große straße']);
    });
    const after = await new DataSource(options).initialize();
    try {
      expect(await runMigrationsOnce(after)).toHaveLength((options.migrations as unknown[]).length - at);
      const rows = await after.query<Array<{ id: string; search_text: string | null }>>('SELECT id, search_text FROM messages ORDER BY position');
      expect(rows).toHaveLength(509);
      expect(rows.slice(0, 505).filter((r, i) => r.search_text !== `ecole ${i}`)).toEqual([]);
      expect(rows.slice(505)).toEqual([
        { id: 'question', search_text: '<think>mine</think> tag' },
        { id: 'inline', search_text: 'use <think>x</think>' },
        { id: 'live', search_text: null },
        { id: 'sharp', search_text: 'die grosse strasse' },
      ]);
    } finally {
      await after.destroy();
    }
  });
});

describe('the SQLite database file', () => {
  it('is readable by its owner only, and so are its WAL and shared-memory files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'parley-mode-'));
    const previous = process.umask(0o022);
    try {
      const path = join(dir, 'parley.sqlite');
      const ds = new DataSource(dataSourceOptions({ type: 'sqlite', path }));
      await ds.initialize();
      await ds.query('CREATE TABLE t (x INTEGER)');
      await ds.query('INSERT INTO t VALUES (1)');
      for (const file of [path, `${path}-wal`, `${path}-shm`]) expect((statSync(file).mode & 0o777).toString(8)).toBe('600');
      await ds.destroy();
    } finally {
      process.umask(previous);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
