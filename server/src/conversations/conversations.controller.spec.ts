import { SqliteReadService } from '../database/sqlite-reader.js';
import { DataSource } from 'typeorm';
import { ConversationsService, DELETE_CHUNK } from './conversations.service.js';
import { Message } from './message.entity.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { dialects } from '../testing/dialects.js';

const MISSING = '00000000-0000-4000-8000-000000000000';

describe.each(dialects())('conversations API on %s', (dialect) => {
  let t: TestApp;
  let service: ConversationsService;
  beforeAll(async () => {
    t = await createTestApp(dialect);
    service = t.app.get(ConversationsService);
  });
  afterAll(async () => { await t.close(); });

  async function seed(sessionId: string, title: string, messages = 0) {
    const c = await service.create(sessionId, title);
    for (let i = 0; i < messages; i++) {
      await service.appendMessages(c.id, [{ role: i % 2 ? 'assistant' : 'user', content: `m${i}`, status: 'complete' }]);
    }
    return c;
  }

  it('lists only the caller\'s conversations, newest first, paginated with total', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    // Distinct milliseconds, so the order under test is by time and never by the id tie-break.
    const tick = () => new Promise((r) => setTimeout(r, 3));
    const a1 = await seed(alice.id, 'first');
    await seed(bob.id, 'bob only');
    await tick();
    const a2 = await seed(alice.id, 'second');
    await tick();
    const a3 = await seed(alice.id, 'third');
    await tick();
    await service.appendMessages(a1.id, [{ role: 'user', content: 'bump', status: 'complete' }]);

    const page1 = await t.http().get('/api/v1/conversations?limit=2').set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(page1.body.total).toBe(3);
    expect(page1.body.conversations.map((c: { id: string }) => c.id)).toEqual([a1.id, a3.id]);
    const page2 = await t.http().get('/api/v1/conversations?limit=2&offset=2').set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(page2.body.conversations.map((c: { id: string }) => c.id)).toEqual([a2.id]);
    expect(page2.body.conversations[0]).toEqual({
      id: a2.id, session_id: alice.id, title: 'second', created_at: expect.any(String), updated_at: expect.any(String),
      is_active: true, message_count: 0,
    });
  });

  it('refuses a session_id query naming another session', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    await t.http().get(`/api/v1/conversations?session_id=${alice.id}`).set('Authorization', `Bearer ${alice.token}`).expect(200);
    const res = await t.http().get(`/api/v1/conversations?session_id=${bob.id}`).set('Authorization', `Bearer ${alice.token}`).expect(404);
    expect(res.body.error.code).toBe('SESSION_NOT_FOUND');
  });

  it('returns a conversation with its latest messages in order, and older pages by position', async () => {
    const s = await t.newSession();
    const c = await seed(s.id, 'long', 7);
    const res = await t.http().get(`/api/v1/conversations/${c.id}?limit=3`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(res.body.conversation).toMatchObject({ id: c.id, title: 'long', message_count: 7 });
    expect(res.body.messages.map((m: { content: string }) => m.content)).toEqual(['m4', 'm5', 'm6']);
    expect(res.body.has_more).toBe(true);
    expect(res.body.messages[0]).toMatchObject({ role: 'user', status: 'complete', position: 4, files: [] });
    const older = await t.http().get(`/api/v1/conversations/${c.id}/messages?before=4&limit=3`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(older.body.messages.map((m: { content: string }) => m.content)).toEqual(['m1', 'm2', 'm3']);
    const oldest = await t.http().get(`/api/v1/conversations/${c.id}/messages?before=1`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(oldest.body).toMatchObject({ messages: [expect.objectContaining({ content: 'm0' })], has_more: false });
    // An id is a UUID in either case: the same conversation in upper case (was 404).
    const upper = await t.http().get(`/api/v1/conversations/${c.id.toUpperCase()}?limit=3`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(upper.body.conversation.id).toBe(c.id);
    // The largest position a database integer holds, and one past it (was a 500 on PostgreSQL).
    const all = await t.http().get(`/api/v1/conversations/${c.id}?before=2147483647`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(all.body.messages).toHaveLength(7);
    for (const path of [`/api/v1/conversations/${c.id}/messages?before=2147483648`, `/api/v1/conversations/${c.id}?before=2147483648`]) {
      const res = await t.http().get(path).set('Authorization', `Bearer ${s.token}`).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    }
  });

  it('opens a page around a message (a search match) and reads on with after; has_newer says where the end is', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    const c = await seed(alice.id, 'long', 30);
    const other = await seed(alice.id, 'other', 2);
    const ids = (await service.page(c.id, 100)).messages.map((m) => m.id);
    const get = (path: string, token = alice.token) => t.http().get(path).set('Authorization', `Bearer ${token}`);
    const contents = (body: { messages: { content: string }[] }) => body.messages.map((m) => m.content);

    // Message 10 in a page of 8: two after it (a quarter of the page), five before it.
    const around = await get(`/api/v1/conversations/${c.id}?around=${ids[10]}&limit=8`).expect(200);
    expect(around.body.conversation.id).toBe(c.id);
    expect(contents(around.body)).toEqual(['m5', 'm6', 'm7', 'm8', 'm9', 'm10', 'm11', 'm12']);
    expect(around.body).toMatchObject({ has_more: true, has_newer: true });
    // The same from /messages; the id in upper case is the same message.
    const viaMessages = await get(`/api/v1/conversations/${c.id}/messages?around=${ids[10].toUpperCase()}&limit=8`).expect(200);
    expect(contents(viaMessages.body)).toEqual(contents(around.body));

    // Reading on: after the last position, until the end says there is nothing newer.
    const next = await get(`/api/v1/conversations/${c.id}/messages?after=12&limit=10`).expect(200);
    expect(contents(next.body)).toEqual(['m13', 'm14', 'm15', 'm16', 'm17', 'm18', 'm19', 'm20', 'm21', 'm22']);
    expect(next.body).toMatchObject({ has_more: true, has_newer: true });
    const last = await get(`/api/v1/conversations/${c.id}/messages?after=22&limit=10`).expect(200);
    expect(contents(last.body)).toEqual(['m23', 'm24', 'm25', 'm26', 'm27', 'm28', 'm29']);
    expect(last.body).toMatchObject({ has_more: true, has_newer: false });
    expect((await get(`/api/v1/conversations/${c.id}/messages?after=29`).expect(200)).body).toMatchObject({ messages: [], has_newer: false });
    // The largest position a cursor may name (after + 1 overflowed PostgreSQL's integer: 500).
    expect((await get(`/api/v1/conversations/${c.id}/messages?after=2147483647`).expect(200)).body)
      .toMatchObject({ messages: [], has_more: true, has_newer: false });

    // Near either end the page is still full, on the side there is; the latest page has nothing newer.
    const nearEnd = await get(`/api/v1/conversations/${c.id}?around=${ids[29]}&limit=8`).expect(200);
    expect(contents(nearEnd.body)).toEqual(['m22', 'm23', 'm24', 'm25', 'm26', 'm27', 'm28', 'm29']);
    expect(nearEnd.body).toMatchObject({ has_more: true, has_newer: false });
    const nearStart = await get(`/api/v1/conversations/${c.id}?around=${ids[0]}&limit=8`).expect(200);
    expect(contents(nearStart.body)).toEqual(['m0', 'm1', 'm2']);
    expect(nearStart.body).toMatchObject({ has_more: false, has_newer: true });
    expect((await get(`/api/v1/conversations/${c.id}?limit=8`).expect(200)).body.has_newer).toBe(false);
    expect((await get(`/api/v1/conversations/${c.id}/messages?before=20&limit=5`).expect(200)).body).toMatchObject({ has_more: true, has_newer: true });

    // Another conversation's message, a missing one, and another session's conversation: 404, as missing.
    const otherIds = (await service.page(other.id, 10)).messages.map((m) => m.id);
    for (const id of [otherIds[0], MISSING]) {
      const res = await get(`/api/v1/conversations/${c.id}?around=${id}`).expect(404);
      expect(res.body.error.code).toBe('MESSAGE_NOT_FOUND');
    }
    expect((await get(`/api/v1/conversations/${c.id}?around=${ids[3]}`, bob.token).expect(404)).body.error.code).toBe('CONVERSATION_NOT_FOUND');

    // One cursor at a time; a cursor of the wrong kind is refused.
    for (const query of [`before=5&after=2`, `around=${ids[3]}&before=9`, `after=1&around=${ids[3]}`, 'around=12', 'after=-1']) {
      const res = await get(`/api/v1/conversations/${c.id}/messages?${query}`).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    }
    const clash = await get(`/api/v1/conversations/${c.id}/messages?before=5&after=2`).expect(400);
    expect(clash.body.error.message).toMatch(/cannot be combined with/);
  });

  it('searches the caller\'s titles with q: any case, wildcards taken literally, another session\'s never', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    for (const title of ['Trip to Lisbon', 'lisbon food', '100% done', '100 things', 'a_b', 'axb', 'Ünïcode Straße']) await seed(alice.id, title);
    await seed(bob.id, 'Lisbon for Bob');
    const search = async (q: string): Promise<string[]> => {
      const res = await t.http().get(`/api/v1/conversations?q=${encodeURIComponent(q)}`).set('Authorization', `Bearer ${alice.token}`).expect(200);
      expect(res.body.total).toBe(res.body.conversations.length);
      return (res.body.conversations as { title: string }[]).map((c) => c.title).sort();
    };
    expect(await search('LISBON')).toEqual(['Trip to Lisbon', 'lisbon food']);
    expect(await search('  lisbon ')).toEqual(['Trip to Lisbon', 'lisbon food']);
    expect(await search('100%')).toEqual(['100% done']);
    expect(await search('a_b')).toEqual(['a_b']);
    expect(await search('straße')).toEqual(['Ünïcode Straße']);
    // Each word, in any order, not only the text as typed.
    expect(await search('straße ünicode')).toEqual(['Ünïcode Straße']);
    expect(await search('strasse nowhere')).toEqual([]);
    // ß as "ss", as full case folding has it (and the capital ẞ too).
    expect(await search('STRASSE')).toEqual(['Ünïcode Straße']);
    expect(await search('STRAẞE')).toEqual(['Ünïcode Straße']);
    // Any case and accents, beyond ASCII, on both databases.
    for (const title of ['ÉCOLE normale', 'İstanbul trip', 'ΣΊΣΥΦΟΣ myth']) await seed(alice.id, title);
    expect(await search('ÜNÏCODE')).toEqual(['Ünïcode Straße']);
    expect(await search('ecole')).toEqual(['ÉCOLE normale']);
    expect(await search('istanbul')).toEqual(['İstanbul trip']);
    expect(await search('σίσυφος')).toEqual(['ΣΊΣΥΦΟΣ myth']);
    expect(await search('ΣΊΣ')).toEqual(['ΣΊΣΥΦΟΣ myth']);
    expect(await search('nothing like it')).toEqual([]);
    for (const q of ['', '   ', 'x'.repeat(201), '\u0301', ' \u0301\u0308 ']) {
      const res = await t.http().get(`/api/v1/conversations?q=${encodeURIComponent(q)}`).set('Authorization', `Bearer ${alice.token}`).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    }
    // Accent marks alone fold to nothing, which every title "contains": refused, not a list of everything.
    const marks = await t.http().get(`/api/v1/conversations?q=${encodeURIComponent('\u0301')}`).set('Authorization', `Bearer ${alice.token}`).expect(400);
    expect(marks.body.error.message).toBe('q must hold a letter, digit or other character to search for, not accent marks alone');
    // A mark with a letter still searches as the letter.
    expect(await search('e\u0301cole')).toEqual(['ÉCOLE normale']);
  });

  it('finds conversations by what was said in them, with a snippet around the match; never another session\'s', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    const trip = await seed(alice.id, 'Travel plans');
    const [question] = await service.appendMessages(trip.id, [{ role: 'user', content: 'Where should I eat in Lisbon?', status: 'complete' }]);
    const [answer] = await service.appendMessages(trip.id, [{
      role: 'assistant', status: 'complete',
      content: `Try the ${'very '.repeat(12)}famous PASTÉIS de Belém near the monastery,\n\nthen walk along the river for an hour or two before dinner.`,
    }]);
    const code = await seed(alice.id, 'Code');
    await service.appendMessages(code.id, [{ role: 'user', content: 'Is 100% coverage_goal worth it?', status: 'complete' }]);
    const other = await seed(bob.id, 'Bob');
    await service.appendMessages(other.id, [{ role: 'user', content: 'pastéis for bob', status: 'complete' }]);
    interface Found { id: string; match?: { message_id: string; role: string; snippet: { text: string; start: number; length: number } } }
    const search = async (q: string): Promise<{ total: number; conversations: Found[] }> => (await t.http()
      .get(`/api/v1/conversations?q=${encodeURIComponent(q)}`).set('Authorization', `Bearer ${alice.token}`).expect(200)).body;
    const ids = async (q: string): Promise<string[]> => (await search(q)).conversations.map((c) => c.id);
    const marked = (found: Found): string => found.match!.snippet.text.slice(found.match!.snippet.start, found.match!.snippet.start + found.match!.snippet.length);

    const belem = await search('pasteis de belem');
    expect(belem.total).toBe(1);
    expect(belem.conversations[0].id).toBe(trip.id);
    expect(belem.conversations[0].match).toMatchObject({ message_id: answer.id, role: 'assistant' });
    expect(marked(belem.conversations[0])).toBe('PASTÉIS de Belém');
    // Cut around the match at word boundaries, on one line.
    const { text } = belem.conversations[0].match!.snippet;
    expect(text.startsWith('…very ')).toBe(true);
    expect(text.endsWith('…')).toBe(true);
    expect(text).toContain('monastery, then walk');
    // Found by its title: no snippet needed.
    expect((await search('travel')).conversations).toEqual([expect.not.objectContaining({ match: expect.anything() })]);
    // LIKE's wildcards are plain text.
    expect(await ids('100%')).toEqual([code.id]);
    expect(await ids('coverage_goal')).toEqual([code.id]);
    expect(await ids('coverage%goal')).toEqual([]);
    expect(await ids('e_g')).toEqual([code.id]);
    expect(await ids('100_')).toEqual([]);
    // Another session's messages are never searched.
    expect(await ids('for bob')).toEqual([]);
    // Every word in one message, in any order: the phrase is marked where it is written so, else the longest word.
    const bread = await seed(alice.id, 'Baking');
    await service.appendMessages(bread.id, [{ role: 'user', content: 'How long does banana bread bake?', status: 'complete' }]);
    await service.appendMessages(bread.id, [{ role: 'assistant', content: 'About an hour; ripe BANANAS help.', status: 'complete' }]);
    const phrase = await search('banana bread');
    expect(phrase.conversations.map((c) => [c.id, c.match?.role])).toEqual([[bread.id, 'user']]);
    expect(marked(phrase.conversations[0])).toBe('banana bread');
    const reordered = await search('bread banana');
    expect(reordered.conversations.map((c) => [c.id, c.match?.role])).toEqual([[bread.id, 'user']]);
    expect(marked(reordered.conversations[0])).toBe('banana');
    const answer2 = await search('HOUR banana');
    expect(answer2.conversations.map((c) => [c.id, c.match?.role])).toEqual([[bread.id, 'assistant']]);
    expect(marked(answer2.conversations[0])).toBe('BANANA');
    // Words split over two messages are no match.
    expect(await ids('ripe bake')).toEqual([]);
    // ß as "ss" in messages too, marked in the text as it is.
    const street = await seed(alice.id, 'Address');
    await service.appendMessages(street.id, [{ role: 'user', content: 'We live on the GROẞE Straße now', status: 'complete' }]);
    for (const q of ['grosse strasse', 'große STRAẞE', 'strasse']) {
      const found = await search(q);
      expect(found.conversations.map((c) => c.id)).toEqual([street.id]);
      expect(marked(found.conversations[0])).toBe(q === 'strasse' ? 'Straße' : 'GROẞE Straße');
    }

    // An edited question is found by its new text only.
    await service.updateMessage(question.id, { content: 'Where should I eat in Porto?' });
    expect(await ids('lisbon')).toEqual([]);
    const porto = await search('PORTO');
    expect(porto.conversations.map((c) => [c.id, c.match?.role, c.match?.message_id])).toEqual([[trip.id, 'user', question.id]]);
    expect(marked(porto.conversations[0])).toBe('Porto');

    // An answer still streaming is found once it ends, by its final text.
    const live = await seed(alice.id, 'Live');
    const [streaming] = await service.appendMessages(live.id, [{ role: 'assistant', content: '', status: 'streaming' }]);
    await service.saveProgress(streaming.id, 'a half-written secret', undefined);
    expect(await ids('secret')).toEqual([]);
    await service.updateMessage(streaming.id, { content: 'a half-written secret, finished', status: 'complete' });
    expect(await ids('secret')).toEqual([live.id]);
    // Deleted with its conversation.
    await t.http().delete(`/api/v1/conversations/${live.id}`).set('Authorization', `Bearer ${alice.token}`).expect(204);
    expect(await ids('secret')).toEqual([]);
  });

  it('searches what was said: an answer without the reasoning it began with, a question as written', async () => {
    const s = await t.newSession();
    const search = async (q: string): Promise<Array<{ id: string; match?: { message_id: string; snippet: { text: string } } }>> => (await t.http()
      .get(`/api/v1/conversations?q=${encodeURIComponent(q)}`).set('Authorization', `Bearer ${s.token}`).expect(200)).body.conversations;
    const ids = async (q: string): Promise<string[]> => (await search(q)).map((c) => c.id);
    const c = await seed(s.id, 'Geography');
    const [question, answer] = await service.appendMessages(c.id, [
      { role: 'user', content: '<think>my own tag</think> is this markup?', status: 'complete' },
      { role: 'assistant', content: '<think>pondering zanzibar first</think>\n\nThe capital is **Dodoma**.', status: 'complete' },
    ]);
    // The model's reasoning is not what the conversation said (the SPA folds it away; it is never sent back).
    expect(await ids('zanzibar')).toEqual([]);
    const dodoma = await search('dodoma');
    expect(dodoma.map((f) => [f.id, f.match?.message_id, f.match?.snippet.text])).toEqual([[c.id, answer.id, 'The capital is Dodoma.']]);
    // A question is what its writer typed, tags and all.
    expect((await search('my own tag')).map((f) => f.match?.message_id)).toEqual([question.id]);

    // An answer that ends streaming, and one ended by the sweep of a lost instance's replies.
    const [live, lost] = await service.appendMessages(c.id, [
      { role: 'assistant', content: '', status: 'streaming' },
      { role: 'assistant', content: '', status: 'streaming', leaseExpiresAt: new Date(Date.now() - 60_000) },
    ]);
    await service.updateMessage(live.id, { content: '<think>a secret plan</think>A public answer', status: 'complete' });
    expect(await service.markInterruptedIfExpired(lost.id, new Date(), 'SERVICE_UNAVAILABLE', { content: '<think>a hidden musing</think>A visible part', isNewContent: true })).toBe(true);
    expect(await ids('secret plan')).toEqual([]);
    expect(await ids('hidden musing')).toEqual([]);
    expect(await ids('public answer')).toEqual([c.id]);
    expect(await ids('visible part')).toEqual([c.id]);
  });

  it('pages search results found by title and by message together, newest first, with the total', async () => {
    const s = await t.newSession();
    const tick = () => new Promise((r) => setTimeout(r, 3));
    const made: string[] = [];
    for (let i = 0; i < 5; i++) {
      const c = await seed(s.id, i % 2 === 0 ? `Kiwi ${i}` : `Fruit ${i}`);
      if (i % 2 === 1) await service.appendMessages(c.id, [{ role: 'user', content: `I like kiwi number ${i}`, status: 'complete' }]);
      made.push(c.id);
      await tick();
    }
    await seed(s.id, 'Unrelated');
    const page = async (offset: number) => (await t.http().get(`/api/v1/conversations?q=kiwi&limit=2&offset=${offset}`)
      .set('Authorization', `Bearer ${s.token}`).expect(200)).body as { total: number; conversations: Array<{ id: string; match?: unknown }> };
    const first = await page(0);
    const second = await page(2);
    const third = await page(4);
    expect([first.total, second.total, third.total]).toEqual([5, 5, 5]);
    expect([...first.conversations, ...second.conversations, ...third.conversations].map((c) => [c.id, c.match !== undefined]))
      .toEqual([...made].reverse().map((id, i) => [id, (4 - i) % 2 === 1]));
  });

  it('reads a search off the event loop on SQLite (the read worker), and on the main connection without it, finding the same', async () => {
    const reads = t.app.get(SqliteReadService);
    const s = await t.newSession();
    const a = await seed(s.id, 'Alpha');
    await service.appendMessages(a.id, [{ role: 'user', content: 'the zebra question', status: 'complete' }]);
    await seed(s.id, 'Zebra in the title');
    const search = async (): Promise<unknown> => (await t.http().get('/api/v1/conversations?q=zebra')
      .set('Authorization', `Bearer ${s.token}`).expect(200)).body;
    const offLoop = vi.spyOn(reads, 'all');
    try {
      const found = await search();
      expect(found).toMatchObject({ total: 2 });
      if (dialect === 'sqlite') {
        // The titles, the scan of the messages and the match's message: each a read on the worker.
        expect(offLoop).toHaveBeenCalledTimes(3);
        expect(offLoop.mock.results.every((r) => r.value instanceof Promise)).toBe(true);
        await reads.reader!.stop();
        expect(reads.all('SELECT 1', [])).toBeUndefined();
        expect(await search()).toEqual(found);
        reads.reader!.start();
      } else {
        expect(reads.reader).toBeUndefined();
        expect(offLoop.mock.results.every((r) => r.value === undefined)).toBe(true);
      }
    } finally {
      offLoop.mockRestore();
    }
  });

  it('renames and deletes', async () => {
    const s = await t.newSession();
    const c = await seed(s.id, 'old', 2);
    const renamed = await t.http().patch(`/api/v1/conversations/${c.id}`).set('Authorization', `Bearer ${s.token}`).send({ title: '  Trip  ' }).expect(200);
    expect(renamed.body.conversation.title).toBe('Trip');
    await t.http().delete(`/api/v1/conversations/${c.id}`).set('Authorization', `Bearer ${s.token}`).expect(204);
    const gone = await t.http().get(`/api/v1/conversations/${c.id}`).set('Authorization', `Bearer ${s.token}`).expect(404);
    expect(gone.body.error.code).toBe('CONVERSATION_NOT_FOUND');
    expect((await service.page(c.id, 10)).messages).toEqual([]);
  });

  it('deletes a long conversation whole; on SQLite its messages in chunks, the event loop turning between them', async () => {
    const s = await t.newSession();
    const c = await service.create(s.id, 'long');
    const count = DELETE_CHUNK * 2 + 50;
    await service.appendMessages(c.id, Array.from({ length: count }, (_, i) => ({ role: i % 2 ? 'assistant' as const : 'user' as const, content: `m${i}`, status: 'complete' as const })));
    const other = await seed(s.id, 'kept', 3);
    let turns = 0;
    let isDone = false;
    const removed = service.remove(s.id, c.id).finally(() => { isDone = true; });
    while (!isDone) {
      await new Promise((resolve) => setImmediate(resolve));
      turns++;
    }
    await removed;
    const left = await t.app.get(DataSource).getRepository(Message).countBy({ conversationId: c.id });
    expect(left).toBe(0);
    await expect(service.findOwned(s.id, c.id)).rejects.toMatchObject({ code: 'CONVERSATION_NOT_FOUND' });
    expect((await service.page(other.id, 10)).messages).toHaveLength(3);
    // Three chunks, each its own statement after a turn of the loop; PostgreSQL's one cascade runs in its own process.
    if (dialect === 'sqlite') expect(turns).toBeGreaterThanOrEqual(3);
  });

  it('stores a title without control, bidi or zero-width characters, and never cuts an emoji in two', async () => {
    const s = await t.newSession();
    const c = await seed(s.id, 'old');
    const rename = async (title: string): Promise<string> => (await t.http().patch(`/api/v1/conversations/${c.id}`)
      .set('Authorization', `Bearer ${s.token}`).send({ title }).expect(200)).body.conversation.title;
    expect(await rename('a\u0001b\u0007c \u202eevil\u200b')).toBe('abc evil');
    // 200 characters are 200 code points: 150 emoji stay 150 (they were cut to 100), a ZWJ family stays whole.
    expect(await rename('😀'.repeat(150))).toBe('😀'.repeat(150));
    expect(await rename('👨\u200d👩\u200d👧 trip')).toBe('👨\u200d👩\u200d👧 trip');
    expect((await service.findOwned(s.id, c.id)).title).toBe('👨\u200d👩\u200d👧 trip');
  });

  it('limits a title as it is stored: spaces around it and runs of whitespace in it do not count', async () => {
    const s = await t.newSession();
    const c = await seed(s.id, 'old');
    const rename = (title: string) => t.http().patch(`/api/v1/conversations/${c.id}`).set('Authorization', `Bearer ${s.token}`).send({ title });
    const padded = await rename(`${' '.repeat(5)}${'x'.repeat(195)}${' '.repeat(5)}`).expect(200);
    expect(padded.body.conversation.title).toBe('x'.repeat(195));
    const spaced = await rename(`${'a'.repeat(100)}\n\t    \u200b${'b'.repeat(99)}`).expect(200);
    expect(spaced.body.conversation.title).toBe(`${'a'.repeat(100)} ${'b'.repeat(99)}`);
    expect((await service.findOwned(s.id, c.id)).title).toBe(`${'a'.repeat(100)} ${'b'.repeat(99)}`);
    // What is stored still counts: 201 characters once cleaned are refused, not cut.
    const long = await rename(`  ${'a'.repeat(100)}   ${'b'.repeat(100)}  `).expect(400);
    expect(long.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['title']);
    expect((await service.findOwned(s.id, c.id)).title).toBe(`${'a'.repeat(100)} ${'b'.repeat(99)}`);
  });

  describe('another session\'s conversation is 404 exactly like a missing one, for every verb', () => {
    const verbs: [string, (t: TestApp, id: string, token: string) => Promise<{ status: number; body: { error: Record<string, unknown> } }>][] = [
      ['GET', (t, id, token) => t.http().get(`/api/v1/conversations/${id}`).set('Authorization', `Bearer ${token}`)],
      ['GET messages', (t, id, token) => t.http().get(`/api/v1/conversations/${id}/messages`).set('Authorization', `Bearer ${token}`)],
      ['PATCH', (t, id, token) => t.http().patch(`/api/v1/conversations/${id}`).set('Authorization', `Bearer ${token}`).send({ title: 'hijack' })],
      ['DELETE', (t, id, token) => t.http().delete(`/api/v1/conversations/${id}`).set('Authorization', `Bearer ${token}`)],
    ];
    it.each(verbs)('%s', async (_verb, call) => {
      const owner = await t.newSession();
      const intruder = await t.newSession();
      const c = await seed(owner.id, 'private', 1);
      const other = await call(t, c.id, intruder.token);
      const missing = await call(t, MISSING, intruder.token);
      expect(other.status).toBe(404);
      expect(missing.status).toBe(404);
      const strip = (e: Record<string, unknown>) => ({ ...e, timestamp: 0, request_id: 0 });
      expect(strip(other.body.error)).toEqual(strip(missing.body.error));
      const still = await service.findOwned(owner.id, c.id);
      expect(still.title).toBe('private');
    });
  });

  describe('validation', () => {
    const bad: [string, string, Record<string, unknown> | undefined, string][] = [
      ['empty title', 'patch', { title: '' }, 'title'],
      ['blank title', 'patch', { title: '   ' }, 'title'],
      ['title too long', 'patch', { title: 'x'.repeat(201) }, 'title'],
      ['title too long once cleaned, invisible characters between', 'patch', { title: 'x\u200b'.repeat(201) }, 'title'],
      ['title of only spaces and line breaks', 'patch', { title: ' \n\t\u3000 ' }, 'title'],
      ['title of only invisible characters', 'patch', { title: '\u200b\u202e\u0007' }, 'title'],
      ['title that renders blank', 'patch', { title: '\u2800\u3164\u00ad\u0301\ufe0f' }, 'title'],
      ['title of format characters alone', 'patch', { title: '\u{E0049}\u{E0047}\u{E004E}\u{E004F}\u{E0052}\u{E0045} \ufff9\ufffb\u{1D173}' }, 'title'],
      ['title over 200 code points counting variation selectors', 'patch', { title: '❤️'.repeat(150) }, 'title'],
      ['unknown field', 'patch', { title: 'ok', is_active: false }, 'is_active'],
      ['wrong type', 'patch', { title: 42 }, 'title'],
    ];
    it.each(bad)('%s → 400 VALIDATION_ERROR naming the field, nothing changed', async (_n, _verb, body, field) => {
      const s = await t.newSession();
      const c = await seed(s.id, 'keep');
      const res = await t.http().patch(`/api/v1/conversations/${c.id}`).set('Authorization', `Bearer ${s.token}`).send(body).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
      expect(res.body.error.details.fields.map((f: { field: string }) => f.field)).toContain(field);
      expect((await service.findOwned(s.id, c.id)).title).toBe('keep');
    });

    // Only decimal digits are a number ('' and '1e1' were 0 and 10).
    it.each([['limit=0'], ['limit=101'], ['offset=-1'], ['limit=abc'], ['limit='], ['limit=1e1'], ['offset=0x10']])('list query %s → 400', async (q) => {
      const s = await t.newSession();
      const res = await t.http().get(`/api/v1/conversations?${q}`).set('Authorization', `Bearer ${s.token}`).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    });

    it('a parameter given twice → 400 saying it must be given once (each value alone is valid)', async () => {
      const s = await t.newSession();
      const res = await t.http().get('/api/v1/conversations?limit=1&limit=2').set('Authorization', `Bearer ${s.token}`).expect(400);
      expect(res.body.error).toMatchObject({
        code: 'VALIDATION_ERROR', message: 'limit must be given once (it was given 2 times)',
        details: { fields: [{ field: 'limit', errors: ['limit must be given once (it was given 2 times)'] }] },
      });
    });

    it('a malformed id → 400', async () => {
      const s = await t.newSession();
      const res = await t.http().get('/api/v1/conversations/not-a-uuid').set('Authorization', `Bearer ${s.token}`).expect(400);
      expect(res.body.error.code).toBe('VALIDATION_ERROR');
    });
  });
});
