import { randomBytes } from 'node:crypto';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import { FakeOpenAiServer } from '../testing/fake-openai-server.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';
import { startEventOf as startOf } from '../testing/sse-client.js';
import { dialects } from '../testing/dialects.js';
import { waitFor } from '../testing/wait.js';
import { FilesService } from './files.service.js';

function multipart(filename: string, content: Buffer): { body: Buffer; contentType: string } {
  const boundary = `----parley${randomBytes(8).toString('hex')}`;
  const body = Buffer.concat([
    Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${filename}"\r\nContent-Type: application/octet-stream\r\n\r\n`),
    content,
    Buffer.from(`\r\n--${boundary}--\r\n`),
  ]);
  return { body, contentType: `multipart/form-data; boundary=${boundary}` };
}

async function makePdf(lines: string[]): Promise<Buffer> {
  const doc = await PDFDocument.create();
  const font = await doc.embedFont(StandardFonts.Helvetica);
  lines.forEach((line) => doc.addPage().drawText(line, { x: 50, y: 700, size: 12, font }));
  return Buffer.from(await doc.save());
}

interface UpstreamMessage { role: string; content: unknown }

const QUOTA = 256 * 1024;

describe.each(dialects())('files in the chat on %s', (dialect) => {
  let t: TestApp;
  let fake: FakeOpenAiServer;
  beforeAll(async () => {
    fake = new FakeOpenAiServer();
    const baseUrl = await fake.start();
    t = await createTestApp(dialect, {
      LLM_PROVIDER: 'openai', OPENAI_BASE_URL: baseUrl, OPENAI_API_KEY: 'sk-test', OPENAI_MODEL: 'fake-model',
      UPSTREAM_TIMEOUT_MS: '2000', UPSTREAM_IDLE_TIMEOUT_MS: '2000', STREAM_FLUSH_INTERVAL_MS: '20',
      SESSION_QUOTA_BYTES: String(QUOTA),
    });
  });
  afterAll(async () => { await fake.stop(); await t.close(); });

  async function upload(token: string, filename: string, content: Buffer): Promise<string> {
    const { body, contentType } = multipart(filename, content);
    const res = await t.http().post('/api/v1/files/upload').set('Authorization', `Bearer ${token}`)
      .set('Content-Type', contentType).send(body).expect(201);
    return (res.body as { file_id: string }).file_id;
  }

  it('regenerates with the question\'s file as its send had it: cut to fit the context, not omitted', async () => {
    const s = await t.newSession();
    const big = Array.from({ length: 12_000 }, (_, i) => `w${i}`).join(' ');
    const id = await upload(s.token, 'big.txt', Buffer.from(big));
    const sent = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
      .send({ message: 'Summarise it (ref R9)', file_ids: [id] }).expect(200);
    const startLine = sent.text.split('\n').find((l) => l.startsWith('data: ') && l.includes('"type":"start"'))!;
    const { conversation_id: conversationId } = JSON.parse(startLine.slice(6)) as { conversation_id: string };
    const regenerated = await t.http().post('/api/v1/chat/regenerate').set('Authorization', `Bearer ${s.token}`).send({ conversation_id: conversationId }).expect(200);
    const [first, again] = fake.requestsFor('ref R9').map((r) => String((r.body.messages as UpstreamMessage[]).at(-1)!.content));
    expect(first).toContain('w0 w1 w2');
    expect(first).toContain('[… truncated:');
    expect(again).toBe(first);
    // The user is told too, in both answers' start events.
    expect(startOf(sent.text).context).toEqual({ truncated_files: ['big.txt'] });
    expect(startOf(regenerated.text).context).toEqual({ truncated_files: ['big.txt'] });
  });

  it('sends files without a question: the files are the message, and name the conversation; a blank question needs files', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    const notes = await upload(s.token, 'notes.txt', Buffer.from('Meeting notes (ref F1): ship on Friday'));
    const conversations = async (): Promise<Array<{ id: string; title: string }>> =>
      ((await t.http().get('/api/v1/conversations').set(auth).expect(200)).body as { conversations: Array<{ id: string; title: string }> }).conversations;
    // Blank without files: refused, nothing stored, nothing asked of the model.
    const refused = await t.http().post('/api/v1/chat').set(auth).send({ message: ' \n ' }).expect(400);
    expect(refused.body.error).toMatchObject({ code: 'VALIDATION_ERROR', message: 'message must not be blank (it may be empty only when files are attached)' });
    expect(await conversations()).toEqual([]);

    const sent = await t.http().post('/api/v1/chat').set(auth).send({ message: '  ', file_ids: [notes] }).expect(200);
    expect(sent.text).toContain('"type":"done"');
    const conversationId = String(startOf(sent.text).conversation_id);
    // The model gets the file's block alone as the user's turn.
    const [asked] = fake.requestsFor('ref F1');
    expect((asked.body.messages as UpstreamMessage[]).at(-1)).toEqual({ role: 'user', content: '<file name="notes.txt">\nMeeting notes (ref F1): ship on Friday\n</file>' });
    expect(await conversations()).toEqual([expect.objectContaining({ id: conversationId, title: 'notes.txt' })]);
    const stored = await t.http().get(`/api/v1/conversations/${conversationId}`).set(auth).expect(200);
    const [question] = (stored.body as { messages: Array<{ id: string; content: string; files: Array<{ filename: string }> }> }).messages;
    expect([question.content, question.files.map((f) => f.filename)]).toEqual(['', ['notes.txt']]);

    // Two files name it after the first; a question about files may be edited away, and the title follows it.
    const a = await upload(s.token, 'a.txt', Buffer.from('first (ref F2)'));
    const b = await upload(s.token, 'b.txt', Buffer.from('second'));
    const two = await t.http().post('/api/v1/chat').set(auth).send({ message: '', file_ids: [a, b] }).expect(200);
    const asked2 = await t.http().post('/api/v1/chat').set(auth).send({ message: 'Compare them (ref F3)', file_ids: [a, b] }).expect(200);
    const edited = await t.http().post('/api/v1/chat/regenerate').set(auth)
      .send({ conversation_id: startOf(asked2.text).conversation_id, message: '', message_id: startOf(asked2.text).user_message_id }).expect(200);
    expect(edited.text).toContain('"type":"done"');
    const titles = new Map((await conversations()).map((c) => [c.id, c.title]));
    expect(titles.get(String(startOf(two.text).conversation_id))).toBe('a.txt and 1 more file');
    expect(titles.get(String(startOf(asked2.text).conversation_id))).toBe('a.txt and 1 more file');
    const editedRequest = fake.requests.at(-1)!;
    expect(String((editedRequest.body.messages as UpstreamMessage[]).at(-1)!.content)).toMatch(/^<file name="a\.txt">\nfirst \(ref F2\)\n<\/file>\n\n<file name="b\.txt">/);
  });

  it('refuses to answer again a question of files only whose files were deleted since, as it refuses to send one, and changes nothing', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    const only = await upload(s.token, 'only.txt', Buffer.from('the only context (ref F9)'));
    const sent = await t.http().post('/api/v1/chat').set(auth).send({ message: '', file_ids: [only] }).expect(200);
    const { conversation_id: conversationId, user_message_id: questionId } = startOf(sent.text);
    await t.http().delete(`/api/v1/files/${only}`).set(auth).expect(204);
    const before = (await t.http().get(`/api/v1/conversations/${String(conversationId)}`).set(auth).expect(200)).body as unknown;
    const asked = fake.requests.length;
    // Answered again as it is, or "edited" to the same blank text: nothing to answer (both were answered, the model sent an empty turn).
    for (const body of [{ conversation_id: conversationId }, { conversation_id: conversationId, message: '', message_id: questionId }]) {
      const refused = await t.http().post('/api/v1/chat/regenerate').set(auth).send(body).expect(400);
      expect(refused.body.error).toMatchObject({ code: 'VALIDATION_ERROR', details: { fields: [{ field: 'message' }] } });
    }
    expect((await t.http().get(`/api/v1/conversations/${String(conversationId)}`).set(auth).expect(200)).body).toEqual(before);
    expect(fake.requests.length).toBe(asked);
    // Edited to a question, it is answered.
    const edited = await t.http().post('/api/v1/chat/regenerate').set(auth)
      .send({ conversation_id: conversationId, message: 'What now? (ref F10)', message_id: questionId }).expect(200);
    expect(edited.text).toContain('"type":"done"');
  });

  it('tells the user which files the model saw cut short and which not at all; files that fit are not named', async () => {
    const s = await t.newSession();
    // Each over the whole context (~17,000 tokens), both within the session's quota.
    const big = await upload(s.token, 'big.txt', Buffer.from(Array.from({ length: 6_000 }, (_, i) => `w${i}`).join(' ')));
    const other = await upload(s.token, 'other.txt', Buffer.from(Array.from({ length: 6_000 }, (_, i) => `v${i}`).join(' ')));
    const small = await upload(s.token, 'small.txt', Buffer.from('the second file (ref T4)'));
    const all = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
      .send({ message: 'Compare them (ref T4)', file_ids: [big, other, small] }).expect(200);
    // The short file is read whole; of the two big ones the first takes what is left, the other none.
    expect(startOf(all.text).context).toEqual({ truncated_files: ['big.txt'], omitted_files: ['other.txt'] });
    // Kept with the answer: read from history it says the same (the question has none).
    const stored = await t.http().get(`/api/v1/conversations/${String(startOf(all.text).conversation_id)}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect((stored.body as { messages: Array<{ role: string; context: unknown }> }).messages.map((m) => [m.role, m.context])).toEqual([
      ['user', null], ['assistant', { truncated_files: ['big.txt'], omitted_files: ['other.txt'] }],
    ]);
    const sent = String((fake.requestsFor('ref T4')[0].body.messages as UpstreamMessage[]).at(-1)!.content);
    expect(sent).toContain('<file name="small.txt">\nthe second file (ref T4)\n</file>');
    expect(sent).toContain('w0 w1');
    expect(sent).not.toContain('v0 v1');
    const fits = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
      .send({ message: 'Read it (ref T5)', file_ids: [small] }).expect(200);
    expect(startOf(fits.text)).not.toHaveProperty('context');
    const fitStored = await t.http().get(`/api/v1/conversations/${String(startOf(fits.text).conversation_id)}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect((fitStored.body as { messages: Array<{ context: unknown }> }).messages.map((m) => m.context)).toEqual([null, null]);
  });

  it('keeps the notice with the answer from its start: read while it streams (a reload, another instance, a crash) it says it', async () => {
    const s = await t.newSession();
    fake.on('ref T6', { headersDelayMs: 1500 });
    const big = await upload(s.token, 'big.txt', Buffer.from(Array.from({ length: 12_000 }, (_, i) => `w${i}`).join(' ')));
    const auth = { Authorization: `Bearer ${s.token}` };
    const answerWhileStreaming = async (): Promise<{ id: string; context: unknown } | undefined> => {
      const list = await t.http().get('/api/v1/conversations').set(auth).expect(200);
      const first = (list.body as { conversations: Array<{ id: string }> }).conversations[0];
      if (!first) return undefined;
      const got = await t.http().get(`/api/v1/conversations/${first.id}`).set(auth).expect(200);
      const answers = (got.body as { messages: Array<{ id: string; role: string; status: string; context: unknown }> }).messages.filter((m) => m.role === 'assistant');
      return answers.find((m) => m.status === 'streaming');
    };
    const sending = t.http().post('/api/v1/chat').set(auth).send({ message: 'Read it (ref T6)', file_ids: [big] }).then((r) => r);
    const sent = await waitFor('the answer streaming', answerWhileStreaming);
    expect(sent.context).toEqual({ truncated_files: ['big.txt'] });
    await sending;
    // A regeneration knows it before its row is stored: stored with it.
    const regenerating = t.http().post('/api/v1/chat/regenerate').set(auth)
      .send({ conversation_id: String(startOf((await sending).text).conversation_id) }).then((r) => r);
    const again = await waitFor('the new answer streaming', answerWhileStreaming);
    expect(again.id).not.toBe(sent.id);
    expect(again.context).toEqual({ truncated_files: ['big.txt'] });
    expect((await regenerating).status).toBe(200);
  });

  it('stores the answer\'s row with its notice in the first place: a tab that finds it before its files are attached reads it', async () => {
    const s = await t.newSession();
    const big = await upload(s.token, 'big.txt', Buffer.from(Array.from({ length: 12_000 }, (_, i) => `w${i}`).join(' ')));
    const files = t.app.get(FilesService);
    const attach = files.attach.bind(files);
    let seen: unknown = 'not read';
    // The moment between the turn's store and its files' attach, when another tab (or instance) may already follow it.
    const spy = vi.spyOn(files, 'attach').mockImplementationOnce(async (sessionId, fileIds, conversationId, messageId) => {
      const got = await t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${s.token}`).expect(200);
      seen = (got.body as { messages: Array<{ role: string; context: unknown }> }).messages.find((m) => m.role === 'assistant')?.context;
      return attach(sessionId, fileIds, conversationId, messageId);
    });
    try {
      const sent = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
        .send({ message: 'Read it (ref T6b)', file_ids: [big] }).expect(200);
      expect(seen).toEqual({ truncated_files: ['big.txt'] });
      expect(startOf(sent.text).context).toEqual({ truncated_files: ['big.txt'] });
      expect(String((fake.requestsFor('ref T6b')[0].body.messages as UpstreamMessage[]).at(-1)!.content)).toContain('w0 w1');
    } finally {
      spy.mockRestore();
    }
  });

  it('puts the uploaded files\' text into the user turn sent upstream, delimited, never in the system role', async () => {
    const s = await t.newSession();
    const pdfId = await upload(s.token, 'lease.pdf', await makePdf(['Rent is 1234 EUR per month.', 'Notice period: 3 months.']));
    const jsonId = await upload(s.token, 'config.json', Buffer.from('{"port":8080}'));

    const res = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
      .send({ message: 'Summarise the lease (ref Q7)', file_ids: [pdfId, jsonId] }).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
    expect(res.text).toContain('"type":"done"');

    const [upstream] = fake.requestsFor('ref Q7');
    expect(upstream).toBeDefined();
    const messages = upstream.body.messages as UpstreamMessage[];
    const user = messages[messages.length - 1];
    expect(user.role).toBe('user');
    const content = String(user.content);
    expect(content).toContain('Summarise the lease (ref Q7)');
    expect(content).toMatch(/<file name="lease\.pdf">[\s\S]*Rent is 1234 EUR per month\.[\s\S]*Notice period: 3 months\.[\s\S]*<\/file>/);
    // The file as written, not re-serialised.
    expect(content).toContain('<file name="config.json">\n```json\n{"port":8080}\n```\n</file>');
    for (const m of messages.filter((x) => x.role === 'system')) expect(String(m.content)).not.toContain('Rent is 1234');

    // The rows now belong to the user message, which lists them.
    const startLine = res.text.split('\n').find((l) => l.startsWith('data: ') && l.includes('"type":"start"'))!;
    const { conversation_id: conversationId, user_message_id: userMessageId } = JSON.parse(startLine.slice(6)) as { conversation_id: string; user_message_id: string };
    const file = await t.http().get(`/api/v1/files/${pdfId}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(file.body).toMatchObject({ message_id: userMessageId, conversation_id: conversationId });
    const conversation = await t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    const sent = (conversation.body.messages as { id: string; files: { id: string; filename: string }[] }[]).find((m) => m.id === userMessageId)!;
    expect(sent.files.map((f) => f.filename).sort()).toEqual(['config.json', 'lease.pdf']);
  });

  it('keeps a message\'s files in the order the request listed them, in the conversation and in later turns\' context', async () => {
    const s = await t.newSession();
    // Uploaded in another order than they are sent in.
    const c = await upload(s.token, 'c.txt', Buffer.from('third file'));
    const a = await upload(s.token, 'a.txt', Buffer.from('first file'));
    const b = await upload(s.token, 'b.txt', Buffer.from('second file'));
    const res = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
      .send({ message: 'Read these (ref Q8)', file_ids: [a, b, c] }).expect(200);
    const startLine = res.text.split('\n').find((l) => l.startsWith('data: ') && l.includes('"type":"start"'))!;
    const { conversation_id: conversationId } = JSON.parse(startLine.slice(6)) as { conversation_id: string };
    const order = (text: string): number[] => ['a.txt', 'b.txt', 'c.txt'].map((name) => text.indexOf(`<file name="${name}">`));
    const [first] = fake.requestsFor('ref Q8');
    const sentOrder = order(String((first.body.messages as UpstreamMessage[]).at(-1)!.content));
    expect(sentOrder.every((at, i) => at >= 0 && (i === 0 || at > sentOrder[i - 1]))).toBe(true);

    const conversation = await t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    const user = (conversation.body.messages as { role: string; files: { filename: string }[] }[]).find((m) => m.role === 'user')!;
    expect(user.files.map((f) => f.filename)).toEqual(['a.txt', 'b.txt', 'c.txt']);

    await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
      .send({ message: 'And now? (ref Q9)', conversation_id: conversationId }).expect(200);
    const [second] = fake.requestsFor('ref Q9');
    const history = (second.body.messages as UpstreamMessage[]).filter((m) => m.role === 'user').map((m) => String(m.content));
    const laterOrder = order(history.find((text) => text.includes('ref Q8'))!);
    expect(laterOrder.every((at, i) => at >= 0 && (i === 0 || at > laterOrder[i - 1]))).toBe(true);
  });

  it('refuses with 413 QUOTA_EXCEEDED, before anything is written, to send again a file whose copy would pass the quota', async () => {
    const s = await t.newSession();
    // A .txt file takes its bytes and its text (2 × 100 KB); sending it again copies its text (100 KB more).
    const notes = await upload(s.token, 'notes.txt', Buffer.alloc(100 * 1024, 'n'));
    const first = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
      .send({ message: 'Read my notes (ref Q10)', file_ids: [notes] }).expect(200);
    expect(first.text).toContain('"type":"done"');
    const startLine = first.text.split('\n').find((l) => l.startsWith('data: ') && l.includes('"type":"start"'))!;
    const { conversation_id: conversationId } = JSON.parse(startLine.slice(6)) as { conversation_id: string };
    const conversationBefore = await t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    const filesBefore = await t.http().get('/api/v1/files').set('Authorization', `Bearer ${s.token}`).expect(200);
    const requestsBefore = fake.requests.length;

    for (const body of [{ message: 'Once more (ref Q11)', conversation_id: conversationId, file_ids: [notes] }, { message: 'Elsewhere (ref Q12)', file_ids: [notes] }]) {
      const refused = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`).send(body).expect(413);
      expect(refused.body.error).toMatchObject({ code: 'QUOTA_EXCEEDED', details: { quota_bytes: QUOTA, used_bytes: 200 * 1024 } });
    }
    expect(fake.requests.length).toBe(requestsBefore);
    const conversationAfter = await t.http().get(`/api/v1/conversations/${conversationId}`).set('Authorization', `Bearer ${s.token}`).expect(200);
    expect(conversationAfter.body.messages).toEqual(conversationBefore.body.messages);
    expect((await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${s.token}`).expect(200)).body.total).toBe(1);
    expect((await t.http().get('/api/v1/files').set('Authorization', `Bearer ${s.token}`).expect(200)).body).toEqual(filesBefore.body);

    // A small file sent twice still fits: the normal flow goes on.
    const small = await upload(s.token, 'small.txt', Buffer.from('a short note'));
    for (const ref of ['Q13', 'Q14']) {
      const res = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${s.token}`)
        .send({ message: `Read the note (ref ${ref})`, conversation_id: conversationId, file_ids: [small] }).expect(200);
      expect(res.text).toContain('"type":"done"');
      expect(String((fake.requestsFor(`ref ${ref}`)[0].body.messages as UpstreamMessage[]).at(-1)!.content)).toContain('a short note');
    }
  });

  it('refuses a send whose file is deleted while its turn is stored (404) and leaves nothing of it: no question, no answer, no conversation', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    const files = t.app.get(FilesService);
    const attach = files.attach.bind(files);
    // The moment between the send's checks and its files' attach, when another request (tab, instance) deletes the file.
    const deletingFirst = (id: string) => vi.spyOn(files, 'attach').mockImplementationOnce(async (...args) => {
      await t.http().delete(`/api/v1/files/${id}`).set(auth).expect(204);
      return attach(...args);
    });
    const first = await t.http().post('/api/v1/chat').set(auth).send({ message: 'Hello (ref D1)' }).expect(200);
    const conversationId = String(startOf(first.text).conversation_id);
    const before = (await t.http().get(`/api/v1/conversations/${conversationId}`).set(auth).expect(200)).body;
    const requestsBefore = fake.requests.length;
    for (const body of [{ message: 'Read it (ref D2)' }, { message: 'Read it (ref D3)', conversation_id: conversationId }]) {
      const doomed = await upload(s.token, 'doomed.txt', Buffer.from('soon gone'));
      const spy = deletingFirst(doomed);
      try {
        const refused = await t.http().post('/api/v1/chat').set(auth).send({ ...body, file_ids: [doomed] }).expect(404);
        expect(refused.body.error).toMatchObject({ code: 'FILE_NOT_FOUND' });
      } finally {
        spy.mockRestore();
      }
    }
    expect(fake.requests.length).toBe(requestsBefore);
    const list = (await t.http().get('/api/v1/conversations').set(auth).expect(200)).body;
    expect(list.total).toBe(1);
    expect(list.conversations[0]).toMatchObject({ id: conversationId, message_count: 2 });
    expect((await t.http().get(`/api/v1/conversations/${conversationId}`).set(auth).expect(200)).body.messages).toEqual(before.messages);
    // The next send in the conversation goes on as if the refused ones never were.
    const next = await t.http().post('/api/v1/chat').set(auth).send({ message: 'Still there? (ref D4)', conversation_id: conversationId }).expect(200);
    expect(next.text).toContain('"type":"done"');
    const after = (await t.http().get(`/api/v1/conversations/${conversationId}`).set(auth).expect(200)).body;
    expect(after.messages.map((m: { role: string; content: string }) => [m.role, m.content.slice(0, 22)]))
      .toEqual([...before.messages.map((m: { role: string; content: string }) => [m.role, m.content.slice(0, 22)]), ['user', 'Still there? (ref D4)'], ['assistant', expect.any(String)]]);
  });

  it('gives back the files a refused attach had taken: one deleted partway leaves the others unsent, as they were', async () => {
    const s = await t.newSession();
    const auth = { Authorization: `Bearer ${s.token}` };
    const kept = await upload(s.token, 'kept.txt', Buffer.from('keep me'));
    const sent = await upload(s.token, 'sent.txt', Buffer.from('sent before'));
    const first = await t.http().post('/api/v1/chat').set(auth).send({ message: 'First (ref D5)', file_ids: [sent] }).expect(200);
    const conversationId = String(startOf(first.text).conversation_id);
    const service: FilesService = t.app.get(FilesService);
    const files = service as unknown as { ownedRows: (...args: unknown[]) => Promise<unknown> };
    const ownedRows = files.ownedRows.bind(files);
    let reads = 0;
    // The send's check reads both rows (1), then its attach does (2), and `sent` is deleted before its copy is made:
    // `kept` was claimed already.
    const rowsSpy = vi.spyOn(files, 'ownedRows').mockImplementation(async (...args: unknown[]) => {
      const rows = await ownedRows(...args);
      if (++reads === 2) await t.http().delete(`/api/v1/files/${sent}`).set(auth).expect(204);
      return rows;
    });
    try {
      const refused = await t.http().post('/api/v1/chat').set(auth)
        .send({ message: 'Both (ref D6)', conversation_id: conversationId, file_ids: [kept, sent] }).expect(404);
      expect(refused.body.error).toMatchObject({ code: 'FILE_NOT_FOUND' });
    } finally {
      rowsSpy.mockRestore();
    }
    expect(reads).toBe(2);
    const keptNow = (await t.http().get(`/api/v1/files/${kept}`).set(auth).expect(200)).body;
    expect(keptNow).toMatchObject({ message_id: null, conversation_id: null });
    const conversation = (await t.http().get(`/api/v1/conversations/${conversationId}`).set(auth).expect(200)).body;
    expect(conversation.messages.map((m: { role: string }) => m.role)).toEqual(['user', 'assistant']);
    // It can still be sent.
    const again = await t.http().post('/api/v1/chat').set(auth).send({ message: 'Kept (ref D7)', conversation_id: conversationId, file_ids: [kept] }).expect(200);
    expect(again.text).toContain('"type":"done"');
    expect(String((fake.requestsFor('ref D7')[0].body.messages as UpstreamMessage[]).at(-1)!.content)).toContain('keep me');
  });

  it('refuses another session\'s file exactly like a missing one, before anything is written', async () => {
    const alice = await t.newSession();
    const bob = await t.newSession();
    const bobs = await upload(bob.token, 'bob.txt', Buffer.from('Bob\'s secret'));
    const before = fake.requests.length;
    const other = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`)
      .send({ message: 'read it', file_ids: [bobs] }).expect(404);
    const missing = await t.http().post('/api/v1/chat').set('Authorization', `Bearer ${alice.token}`)
      .send({ message: 'read it', file_ids: ['00000000-0000-4000-8000-000000000000'] }).expect(404);
    expect(other.body.error.code).toBe('FILE_NOT_FOUND');
    expect({ ...other.body.error, timestamp: 0, request_id: 0 }).toEqual({ ...missing.body.error, timestamp: 0, request_id: 0 });
    expect(fake.requests.length).toBe(before);
    const conversations = await t.http().get('/api/v1/conversations').set('Authorization', `Bearer ${alice.token}`).expect(200);
    expect(conversations.body.total).toBe(0);
    const file = await t.http().get(`/api/v1/files/${bobs}`).set('Authorization', `Bearer ${bob.token}`).expect(200);
    expect(file.body.message_id).toBeNull();
  });
});
