import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createApp } from '../app.factory.js';
import { loadConfig } from '../config/app-config.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';

/**
 * A database restored without the secret its sessions were signed with (DATA_DIR/session-secret left out of the
 * backup, a new disk): Parley generates a new secret and every session is refused for good. It says so at start,
 * at error level, while the old secret can still be put back; a new deployment (no sessions yet) hears nothing.
 */
describe.each(dialects())('a session secret generated beside a database that holds sessions, on %s', (dialect) => {
  let t: TestApp;
  const dirs: string[] = [];
  beforeAll(async () => { t = await createTestApp(dialect); });
  afterAll(async () => {
    await t.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  /** Starts a second app on the same database with a new DATA_DIR and no SESSION_SECRET; the lines it logged. */
  async function startWithoutSecret(): Promise<Array<{ level: number; msg: string }>> {
    const lines: Array<{ level: number; msg: string }> = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l)); done(); },
    });
    const dataDir = mkdtempSync(join(tmpdir(), 'parley-restored-'));
    dirs.push(dataDir);
    const config = loadConfig({
      NODE_ENV: 'test', LOG_LEVEL: 'warn', DATA_DIR: dataDir, LLM_PROVIDER: 'offline', CLIENT_DIR: join(dataDir, 'no-client'),
      DATABASE_URL: t.config.database.type === 'postgres' ? t.config.database.url : `sqlite:${t.config.database.path}`,
    });
    expect(config.sessionSecretSource).toBe('generated');
    const { app } = await createApp(config, { logDestination: sink });
    await app.init();
    await app.close();
    return lines;
  }

  it('logs an error naming the secret file when sessions exist, and nothing when none do', async () => {
    const secretLines = (lines: Array<{ level: number; msg: string }>) => lines.filter((l) => /new session secret was generated/.test(l.msg));
    expect(secretLines(await startWithoutSecret())).toEqual([]);
    await t.newSession();
    expect(secretLines(await startWithoutSecret())).toEqual([expect.objectContaining({ level: 50, msg: expect.stringMatching(/put back the session-secret file/) })]);
  });
});
