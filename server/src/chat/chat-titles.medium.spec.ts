import { dialects } from '../testing/dialects.js';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { tokensOf } from '../testing/sse-client.js';

// MODEL_TITLES=true: after the first answer of a conversation, the model is asked for a title
// (a second upstream call, before the final event); a failed title call keeps the automatic one.
describe.each(dialects())('model-written titles on %s', (dialect) => {
  let h: ChatHarness;
  let token: string;
  beforeAll(async () => {
    h = await createChatHarness(dialect, { MODEL_TITLES: 'true' });
    token = (await h.t.newSession()).token;
  });
  afterAll(async () => { await h.close(); });

  async function firstExchange(message: string) {
    const conn = h.send(token, { message });
    const events = await conn.all();
    expect(conn.status).toBe(200);
    expect(events.at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
    const conversationId = events[0].data.conversation_id as string;
    const res = await h.t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${token}`).expect(200);
    return { events, title: (res.body as { conversation: { title: string | null } }).conversation.title };
  }

  it('replaces the automatic title with the model\'s, cleaned, before the final event', async () => {
    // The title request's user turn is "User: …\n\nAssistant: …" (its instructions are the system turn).
    h.fake.on(/^User: Plan a trip/, { tokens: ['"Lisbon ', 'trip plan".', '\nextra line'] });
    h.fake.on('Plan a trip to Lisbon', { tokens: ['Sure, ', 'here is a plan.'] });
    const { events, title } = await firstExchange('Plan a trip to Lisbon in May for two people');
    expect(tokensOf(events)).toBe('Sure, here is a plan.');
    expect(title).toBe('Lisbon trip plan');
    const titleCall = h.fake.requests.find((r) => r.body.messages?.some((m) => typeof m.content === 'string' && m.content.startsWith('Write a short title')));
    expect(titleCall?.lastUserText).toContain('User: Plan a trip to Lisbon');
    expect(titleCall?.lastUserText).toContain('Assistant: Sure, here is a plan.');
  });

  it('leaves a reasoning model\'s <think> blocks out of the title and of what the title is asked from', async () => {
    h.fake.on(/^User: Name a fruit/, { tokens: ['<think>The user wants', ' a title.</think>', 'Fruit naming'] });
    h.fake.on('Name a fruit', { tokens: ['<think>Apples?</think>', 'An apple.'] });
    const { title } = await firstExchange('Name a fruit that is red');
    expect(title).toBe('Fruit naming');
    const titleCall = h.fake.requests.find((r) => r.lastUserText.startsWith('User: Name a fruit'));
    expect(titleCall?.lastUserText).toContain('Assistant: An apple.');
    expect(titleCall?.lastUserText).not.toContain('Apples?');
  });

  it('keeps a rename made while the first answer streams, even one to the title shown, over the model\'s title', async () => {
    for (const [ref, renamed] of [['R1', 'My own name'], ['R2', null]] as const) {
      h.fake.on(new RegExp(`^User: Slow answer ${ref}`), { tokens: ['Model title'] });
      h.fake.on(`Slow answer ${ref}`, { tokens: ['One ', 'two ', 'three.'], tokenDelayMs: 150 });
      const conn = h.send(token, { message: `Slow answer ${ref} please` });
      await conn.until((events) => events.some((e) => e.data.type === 'token'));
      const conversationId = conn.events[0].data.conversation_id as string;
      const auth = { Authorization: `Bearer ${token}` };
      const shown = (await h.t.http().get(`/api/v1/conversations/${conversationId}`).set(auth).expect(200)).body.conversation.title as string;
      // Renamed to a name of one's own, or to the name shown: either way the user chose it.
      await h.t.http().patch(`/api/v1/conversations/${conversationId}`).set(auth).send({ title: renamed ?? shown }).expect(200);
      expect((await conn.all()).at(-1)!.data).toMatchObject({ type: 'done', status: 'complete' });
      const title = (await h.t.http().get(`/api/v1/conversations/${conversationId}`).set(auth).expect(200)).body.conversation.title as string;
      expect(title).toBe(renamed ?? shown);
    }
  });

  it('keeps the automatic title when the title call fails', async () => {
    h.fake.on(/^User: Compare two databases/, { status: 500 });
    h.fake.on('Compare two databases', { tokens: ['They differ.'] });
    const { title } = await firstExchange('Compare two databases for a small team');
    expect(title).toBe('Compare two databases for a small team');
  });
});
