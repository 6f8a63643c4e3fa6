import { DataSource } from 'typeorm';
import { ConversationsService } from '../conversations/conversations.service.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';

/**
 * Times are instants whatever the process's zone: an instance run with TZ set must store and read the
 * same instants as one in UTC (on PostgreSQL the columns carry no zone, and node-postgres converts with
 * the process's local time unless told otherwise).
 */
describe.each(dialects())('times on %s under a process time zone other than UTC', (dialect) => {
  let t: TestApp;
  const zone = process.env.TZ;
  beforeAll(async () => {
    process.env.TZ = 'America/New_York';
    t = await createTestApp(dialect);
  });
  afterAll(async () => {
    await t.close();
    if (zone === undefined) delete process.env.TZ;
    else process.env.TZ = zone;
  });

  it('stores the UTC wall clock and reads back the same instant', async () => {
    expect(new Date(Date.UTC(2026, 6, 1, 12)).getHours()).toBe(8); // the zone is in effect
    const s = await t.newSession();
    const before = Date.now();
    const c = await t.app.get(ConversationsService).create(s.id, 'zoned');
    const [row] = await t.app.get(DataSource).query<{ stored: string }[]>(
      dialect === 'postgres'
        ? `SELECT to_char(created_at, 'YYYY-MM-DD"T"HH24:MI:SS.MS') AS stored FROM conversations WHERE id = $1`
        : 'SELECT created_at AS stored FROM conversations WHERE id = ?',
      [c.id],
    );
    // The stored wall clock is UTC's (SQLite's text form has a space for the T).
    expect(row.stored.replace(' ', 'T')).toBe(c.createdAt.toISOString().slice(0, 23));
    const read = await t.app.get(ConversationsService).findOwned(s.id, c.id);
    expect(read.createdAt.getTime()).toBe(c.createdAt.getTime());
    expect(Math.abs(read.createdAt.getTime() - before)).toBeLessThan(60_000);
    // And through the API, as an integrator sees it.
    const res = await t.http().get(`/api/v1/conversations/${c.id}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(res.body.conversation.created_at).toBe(c.createdAt.toISOString());
  });
});
