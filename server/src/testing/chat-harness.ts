import type { AddressInfo } from 'node:net';
import { ConversationsService } from '../conversations/conversations.service.js';
import type { Message } from '../conversations/message.entity.js';
import { FakeOpenAiServer } from './fake-openai-server.js';
import type { Dialect } from './dialects.js';
import { createTestApp, type TestApp } from './test-app.js';
import { SseConnection } from './sse-client.js';

export const UPSTREAM_KEY = 'sk-upstream-operator-key';

/** The app against a fake OpenAI-compatible upstream, with short timeouts and loose rate limits. */
export interface ChatHarness {
  t: TestApp;
  fake: FakeOpenAiServer;
  url: string;
  close: () => Promise<void>;
  send: (token: string, body: Record<string, unknown>, headers?: Record<string, string>) => SseConnection;
  get: (token: string, path: string, headers?: Record<string, string>) => SseConnection;
  message: (id: string) => Promise<Message>;
  /** Polls the stored row until `predicate` holds. */
  waitForRow: (id: string, predicate: (m: Message) => boolean, timeoutMs?: number) => Promise<Message>;
}

/** The harness's STREAM_LEASE_MS. */
export const HARNESS_LEASE_MS = 2_000;

/**
 * How far ahead another instance's live reply holds its lease in a test: an owner keeps it at most one lease ahead;
 * 2.5 leases here so a slow run's sweep cannot find it expired, and under the three leases past which the sweep takes
 * a lease for another clock's.
 */
export const LIVE_LEASE_AHEAD_MS = 2.5 * HARNESS_LEASE_MS;

export async function createChatHarness(dialect: Dialect, env: Record<string, string> = {}): Promise<ChatHarness> {
  const fake = new FakeOpenAiServer();
  const baseUrl = await fake.start();
  const t = await createTestApp(dialect, {
    LLM_PROVIDER: 'openai',
    OPENAI_BASE_URL: baseUrl,
    OPENAI_API_KEY: UPSTREAM_KEY,
    OPENAI_MODEL: 'fake-model',
    UPSTREAM_TIMEOUT_MS: '500',
    UPSTREAM_IDLE_TIMEOUT_MS: '500',
    UPSTREAM_MAX_RETRIES: '2',
    STREAM_FLUSH_INTERVAL_MS: '20',
    STREAM_LEASE_MS: String(HARNESS_LEASE_MS),
    RATE_LIMIT_CHAT_PER_MINUTE: '10000',
    RATE_LIMIT_CHAT_PER_HOUR: '100000',
    RATE_LIMIT_REQUESTS_PER_MINUTE: '100000',
    SHUTDOWN_GRACE_MS: '200',
    ...env,
  });
  const url = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
  const conversations = t.app.get(ConversationsService);
  const message = async (id: string): Promise<Message> => {
    const m = await conversations.findMessage(id);
    if (!m) throw new Error(`no message ${id}`);
    return m;
  };
  return {
    t, fake, url,
    close: async () => { await fake.stop(); await t.close(); },
    send: (token, body, headers = {}) => SseConnection.open(`${url}/api/v1/chat`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, ...headers } }),
    get: (token, path, headers = {}) => SseConnection.open(`${url}${path}`, { headers: { authorization: `Bearer ${token}`, ...headers } }),
    message,
    waitForRow: async (id, predicate, timeoutMs = 5_000) => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const m = await message(id);
        if (predicate(m)) return m;
        if (Date.now() > deadline) throw new Error(`row ${id} did not reach the state: ${JSON.stringify({ status: m.status, content: m.content })}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}
