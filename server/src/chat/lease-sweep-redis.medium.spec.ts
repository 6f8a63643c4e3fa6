import { randomBytes } from 'node:crypto';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { Message } from '../conversations/message.entity.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { dialects } from '../testing/dialects.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { waitFor } from '../testing/wait.js';
import { GenerationService } from './generation.service.js';
import { RedisGenerationRegistry } from './redis-generation-registry.js';

const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const OWNER_LEASE_MS = 300;

/**
 * The lease sweep of an instance sharing Redis with the owner of a reply: the owner here is a
 * registry of its own (another "instance", named `crashed`), whose death is the end of its renewals.
 */
describe.each(dialects())('the lease sweep with a shared registry (Redis) on %s', (dialect) => {
  const prefix = `test-${randomBytes(4).toString('hex')}:`;
  let t: TestApp;
  let connection: RedisConnection;
  let owner: RedisGenerationRegistry;
  beforeAll(async () => {
    // The app's own sweep runs every 100 ms: the test waits for the row, whichever sweep ends it.
    t = await createTestApp(dialect, { REDIS_URL, REDIS_PREFIX: prefix, STREAM_LEASE_CHECK_INTERVAL_MS: '100' });
    connection = new RedisConnection({ redisUrl: REDIS_URL, redisPrefix: prefix, instanceId: 'crashed' } as AppConfig);
    await connection.onModuleInit();
    owner = new RedisGenerationRegistry(connection, { instanceId: 'crashed', leaseMs: OWNER_LEASE_MS, retentionMs: 60_000 });
    await owner.onModuleInit();
  });
  afterAll(async () => {
    await owner.onApplicationShutdown();
    const keys = await connection.client!.keys(`${prefix}*`);
    if (keys.length > 0) await connection.client!.del(...keys);
    await connection.onApplicationShutdown();
    await t.close();
  });

  const message = (id: string) => t.app.get(DataSource).getRepository(Message).findOneByOrFail({ id });

  /** A reply `crashed` owns, its lease expired in the database, its row holding `saved` and its events `sent`. */
  async function ownedReply(saved: string, sent: string[]): Promise<string> {
    const session = await t.newSession();
    const conversations = t.app.get(ConversationsService);
    const conv = await conversations.create(session.id, 'owned elsewhere');
    const [row] = await conversations.appendTurn(conv.id, [{
      role: 'assistant', content: saved, status: 'streaming', ownerInstance: 'crashed', leaseExpiresAt: new Date(Date.now() - 60_000),
    }]);
    owner.open(row.id, conv.id);
    for (const token of sent) owner.publishToken(row.id, token, Date.now());
    await owner.flush();
    return row.id;
  }

  it('leaves a reply whose owner still renews it (it lost only the database), then stores the words the crashed owner had sent', async () => {
    // The row saved "Hel" + "lo" at the owner's last flush; its readers were sent two tokens more.
    const id = await ownedReply('Hello', ['Hel', 'lo', ' wor', 'ld']);
    await t.app.get(GenerationService).sweepExpiredLeases();
    expect(await message(id)).toMatchObject({ status: 'streaming', content: 'Hello' });
    // The owner dies: its renewals stop, its liveness key expires.
    await owner.onApplicationShutdown();
    const swept = await waitFor('the sweep', async () => { const m = await message(id); return m.status !== 'streaming' && m; }, 5_000, 50);
    expect(swept).toMatchObject({ status: 'interrupted', errorCode: 'SERVICE_UNAVAILABLE', content: 'Hello world', leaseExpiresAt: null });
    // Searchable by the text stored, and what a reader rebuilds from the row is what it was sent.
    const row = await t.app.get(DataSource).getRepository(Message).findOneOrFail({ where: { id }, select: { id: true, searchText: true } });
    expect(row.searchText).toBe('hello world');
  });
});
