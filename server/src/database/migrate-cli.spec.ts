import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildWorker, WORKER_BUILD_DIR } from '../testing/worker-build.js';
import { migrationTarget } from './migration-target.js';

describe('npm run migrate (migrate-cli)', () => {
  let dir: string;
  const cli = (): { status: number | null; stdout: string; stderr: string } => spawnSync(process.execPath, [join(WORKER_BUILD_DIR, 'database', 'migrate-cli.js')], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH, HOME: process.env.HOME, DATA_DIR: dir,
      // Meant DATABASE_URL: without a word, the run would migrate the SQLite default and say so.
      DATABSE_URL: 'postgres://parley:a-password-never-printed@db.example:5432/parley',
    },
  });

  beforeAll(() => {
    buildWorker(join(__dirname, 'migrate-cli.ts'));
    dir = mkdtempSync(join(tmpdir(), 'parley-migrate-'));
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names a misspelt setting (never its value) and the database it migrates, then migrates it once', () => {
    const first = cli();
    expect(first.status).toBe(0);
    expect(first.stderr).toContain('DATABSE_URL is not a Parley setting and is ignored; did you mean DATABASE_URL?');
    expect(first.stdout).toContain(`migrating SQLite at ${join(dir, 'parley.sqlite')}`);
    expect(first.stdout).toMatch(/applied: \w/);
    expect(first.stdout + first.stderr).not.toContain('a-password-never-printed');
    const again = cli();
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('database is up to date');
  }, 60_000);

  it('names a PostgreSQL target by database, host and port, without its credentials', () => {
    expect(migrationTarget({ type: 'postgres', url: 'postgres://parley:s3cret%21@db.internal:6432/parley_prod?sslmode=require' }))
      .toBe('PostgreSQL database parley_prod at db.internal:6432');
    expect(migrationTarget({ type: 'postgres', url: 'postgresql://u:p@/chat?host=/var/run/postgresql' }))
      .toBe('PostgreSQL database chat at /var/run/postgresql');
    expect(migrationTarget({ type: 'postgres', url: 'postgres://db.internal' })).toBe('PostgreSQL database (default) at db.internal');
  });
});
