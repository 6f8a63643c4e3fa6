import type { AppConfig } from '../../config/app-config.js';
import { FakeOpenAiServer } from '../../testing/fake-openai-server.js';
import { sleep, waitFor } from '../../testing/wait.js';
import type { ProviderChunk } from './chat-provider.js';
import { NodeHttpFetch } from './node-http-fetch.js';
import { OpenAiChatProvider } from './openai-chat.provider.js';

// The provider's transport (Node's HTTP client behind the SDK's `fetch` option) against a real
// loopback server speaking the OpenAI wire format: connections are pooled, idle ones close, and
// a quiet stream is never cut by the pool.
describe('OpenAiChatProvider transport', () => {
  const fake = new FakeOpenAiServer();
  let baseUrl: string;
  beforeAll(async () => { baseUrl = await fake.start(); });
  afterAll(async () => { await fake.stop(); });
  beforeEach(() => { fake.reset(); });

  function provider(idleSocketMs: number): OpenAiChatProvider {
    const llm = {
      provider: 'openai', model: 'fake-model', apiKey: 'sk-test', baseUrl, contextTokens: 8000, maxOutputTokens: 256,
      upstreamTimeoutMs: 2000, upstreamIdleTimeoutMs: 2000, upstreamMaxRetries: 0, offlineTokenDelayMs: 0, modelTitles: false,
    } as unknown as AppConfig['llm'];
    return new OpenAiChatProvider(llm, new NodeHttpFetch(idleSocketMs));
  }

  async function complete(p: OpenAiChatProvider, text: string): Promise<string> {
    let out = '';
    const chunks: ProviderChunk[] = [];
    await p.stream({ messages: [{ role: 'user', content: text }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, (chunk) => {
      chunks.push(chunk);
      if (chunk.type === 'token') out += chunk.text;
    });
    expect(chunks.some((c) => c.type === 'finish')).toBe(true);
    return out;
  }

  it('reuses one pooled connection for completions in a row', async () => {
    const p = provider(4000);
    fake.defaultReply = { tokens: ['a', 'b', 'c'] };
    const before = fake.connections;
    for (let i = 0; i < 3; i++) {
      expect(await complete(p, `hello ${i}`)).toBe('abc');
      // The connection goes back to the pool once the body's end is read, just after [DONE].
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(fake.connections - before).toBe(1);
    p.onApplicationShutdown();
  });

  it('closes a pooled connection once it has been idle for the idle timeout', async () => {
    const p = provider(150);
    fake.defaultReply = { tokens: ['x'] };
    const before = fake.connections;
    await complete(p, 'one');
    await new Promise((r) => setTimeout(r, 400));
    await complete(p, 'two');
    expect(fake.connections - before).toBe(2);
    p.onApplicationShutdown();
  });

  it('calls onDone inside the read that brought [DONE], before the response\'s end is handled', async () => {
    // Everything after the headers comes in one write, so [DONE], the finish reason and the body's
    // end are in one read: the work that read queued (the response's end, the socket back to the
    // pool) runs after the read's callback; onDone may not wait for it, the promise does.
    const p = provider(4000);
    fake.defaultReply = { tokens: ['all ', 'at ', 'once'], oneWrite: true };
    let isAfterRead = false;
    const seen: string[] = [];
    const completion = p.streamWith({ messages: [{ role: 'user', content: 'at once' }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, (chunk) => {
      seen.push(chunk.type);
      if (chunk.type === 'finish') process.nextTick(() => { isAfterRead = true; });
    }, {
      onDone: () => { seen.push(isAfterRead ? 'done after the read' : 'done in the read'); },
    });
    await completion;
    expect(seen).toEqual(['token', 'token', 'token', 'finish', 'usage', 'done in the read']);
    p.onApplicationShutdown();
  });

  it('does not call onDone for a stream that ends without [DONE]', async () => {
    const p = provider(4000);
    fake.defaultReply = { tokens: ['cut ', 'short'], omitDone: true, oneWrite: true };
    let isDone = false;
    const completion = p.streamWith({ messages: [{ role: 'user', content: 'no end' }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, () => undefined, {
      onDone: () => { isDone = true; },
    });
    await expect(completion).rejects.toMatchObject({ kind: 'cut' });
    expect(isDone).toBe(false);
    p.onApplicationShutdown();
  });

  it('opens a held completion\'s connection at once and writes its request only when it is released', async () => {
    const p = provider(4000);
    fake.defaultReply = { tokens: ['held ', 'back'] };
    const before = fake.connections;
    let release!: () => void;
    const sendWhen = new Promise<void>((resolve) => { release = resolve; });
    const chunks: ProviderChunk[] = [];
    const completion = p.streamWith({ messages: [{ role: 'user', content: 'held request' }], maxOutputTokens: 64, fileNames: [] }, new AbortController().signal, (chunk) => {
      chunks.push(chunk);
    }, { sendWhen });
    // Built meanwhile: its connection is open (this provider's pool is new), nothing is written on it.
    await waitFor('the held request\'s connection', () => fake.connections > before, 2000, 5);
    await sleep(50);
    expect(fake.requestsFor('held request')).toHaveLength(0);
    release();
    await completion;
    expect(fake.requestsFor('held request')).toHaveLength(1);
    expect(chunks.filter((c) => c.type === 'token').map((c) => (c.type === 'token' ? c.text : ''))).toEqual(['held ', 'back']);
    p.onApplicationShutdown();
  });

  it('never writes a held completion that is cancelled', async () => {
    const p = provider(4000);
    const before = fake.connections;
    let cancel!: () => void;
    const sendWhen = new Promise<void>((_, reject) => { cancel = () => reject(new Error('cancelled')); });
    sendWhen.catch(() => undefined);
    const abort = new AbortController();
    const completion = p.streamWith({ messages: [{ role: 'user', content: 'cancelled request' }], maxOutputTokens: 64, fileNames: [] }, abort.signal, () => undefined, { sendWhen });
    await waitFor('the held request\'s connection', () => fake.connections > before, 2000, 5);
    // As the upstream worker cancels one: its signal aborted and its gate closed.
    abort.abort();
    cancel();
    await expect(completion).rejects.toMatchObject({ kind: 'connection' });
    await sleep(50);
    expect(fake.requestsFor('cancelled request')).toHaveLength(0);
    p.onApplicationShutdown();
  });

  it('does not cut a streaming reply that is quiet for longer than the idle timeout', async () => {
    const p = provider(100);
    fake.defaultReply = { tokens: ['slow ', 'but ', 'whole'], tokenDelayMs: 300 };
    expect(await complete(p, 'take your time')).toBe('slow but whole');
    p.onApplicationShutdown();
  });
});
