import type { Response, Test } from 'supertest';
import { SseParser } from '../chat/sse-parser.js';
import { type ChatHarness, createChatHarness } from '../testing/chat-harness.js';
import { makePdf } from '../testing/pdf-fixtures.js';
import { type OpenApiDocument, OpenApiValidator, type ReceivedResponse } from '../testing/openapi-validator.js';
import type { SseConnection } from '../testing/sse-client.js';
import { createTestApp, type TestApp } from '../testing/test-app.js';

type Method = 'get' | 'post' | 'patch' | 'delete';
interface Caller { token: string; id: string; cookie: string }
type Answer = ReceivedResponse & { text: string };
/** One request an operation is driven with, the status it must get and headers it must carry beyond those the document requires. */
interface Probe { status: number; why: string; send: () => PromiseLike<Answer>; headers?: string[] }
/** An answer being generated on the upstream deployment, and who asked. */
interface Running { who: Caller; stream: SseConnection; conversationId: string; messageId: string }

const MISSING = '00000000-0000-4000-8000-000000000000';
const MAX_UPLOAD_BYTES = 4096;
const JSON_BODY_LIMIT_BYTES = 16 * 1024;
// Above the sends of the shared session; the 429 row uses up a fresh session's.
const CHATS_PER_MINUTE = 15;
const ACCESS_TOKEN = 'conformance-access-token-0123456789';

type HeaderMap = Record<string, Record<string, unknown>>;
interface Components {
  components: {
    schemas: Record<string, Record<string, unknown>>;
    headers?: HeaderMap;
    responses?: Record<string, { headers?: HeaderMap }>;
  };
}

/**
 * The document with each response header's `$ref` (`#/components/headers/…`) replaced by what it names,
 * for the validator, which reads headers inline: a required header is then checked on every answer.
 */
function withHeadersResolved<T extends OpenApiDocument & Components>(document: T): T {
  const named = document.components.headers ?? {};
  const resolve = (headers: HeaderMap | undefined): HeaderMap | undefined => headers && Object.fromEntries(Object.entries(headers).map(([name, header]) => {
    const ref = typeof header.$ref === 'string' ? header.$ref.replace('#/components/headers/', '') : undefined;
    if (ref !== undefined && named[ref] === undefined) throw new Error(`${name}: ${String(header.$ref)} names no header`);
    return [name, ref === undefined ? header : named[ref]];
  }));
  const copy = structuredClone(document);
  for (const item of Object.values(copy.paths)) {
    for (const op of Object.values(item)) {
      for (const response of Object.values(op.responses)) (response as { headers?: HeaderMap }).headers = resolve((response as { headers?: HeaderMap }).headers);
    }
  }
  for (const response of Object.values(copy.components.responses ?? {})) response.headers = resolve(response.headers);
  return copy;
}

/**
 * The API's real answers against its own OpenAPI document (/api/docs-json): every documented
 * operation is driven through its success and the errors that are cheap to cause, and each answer
 * must have a documented status and Content-Type and a body (or, for a stream, every event) that
 * validates against the documented schema. An operation added without a row here fails the test.
 */
describe('OpenAPI conformance', () => {
  let t: TestApp;
  /**
   * The other shape of deployment: a (fake) upstream model, which can answer slowly or fail, the
   * access gate, and finished answers forgotten at once (a replay after an id then starts over).
   */
  let h: ChatHarness;
  let gated: TestApp;
  let validator: OpenApiValidator;
  let doc: OpenApiDocument & Components;
  let main: Caller;
  let conversationId: string;
  let userMessageId: string;
  let assistantMessageId: string;
  let fileId: string;
  /** An answer the upstream failed, on the upstream deployment. */
  let failed: { who: Caller; conversationId: string; assistantMessageId: string };
  const doomed = { conversationId: '', fileId: '' };
  let regenerable: { conversationId: string; userMessageId: string; assistantMessageId: string };

  const call = (method: Method, url: string, who: Caller | null = main, app: TestApp = t): Test => {
    const req = app.http()[method](url);
    return who ? req.set('Authorization', `Bearer ${who.token}`) : req;
  };
  const events = (res: Response): Record<string, unknown>[] => new SseParser().push(res.text).map((e) => JSON.parse(e.data) as Record<string, unknown>);
  /** Sends a message and returns the ids its stream names. */
  const chat = async (who: Caller, body: Record<string, unknown>, app: TestApp = t): Promise<{ conversationId: string; userMessageId: string; assistantMessageId: string }> => {
    const res = await call('post', '/api/v1/chat', who, app).send(body).expect(200);
    const start = events(res)[0];
    return { conversationId: start.conversation_id as string, userMessageId: start.user_message_id as string, assistantMessageId: start.message_id as string };
  };
  const upload = (who: Caller | null, name: string, content: string | Buffer): Test =>
    call('post', '/api/v1/files/upload', who).attach('file', Buffer.from(content), name);
  /** A session on `app`, through its access gate where it has one. */
  const newSession = async (app: TestApp): Promise<Caller> => {
    const res = await app.http().post('/api/v1/sessions').set('X-Access-Token', ACCESS_TOKEN).send({}).expect(201);
    return { token: res.body.token, id: res.body.session.id, cookie: (res.headers['set-cookie'] as unknown as string[])[0].split(';')[0] };
  };

  const probe = (status: number, why: string, send: () => PromiseLike<Answer>): Probe => ({ status, why, send });
  // The errors every operation of a kind shares, caused the same way for each.
  const noToken = (method: Method, url: string): Probe => probe(401, 'no token', () => call(method, url, null));
  const crossSite = (method: Method, url: string, body?: object): Probe =>
    probe(403, 'cookie from another origin', () => t.http()[method](url).set('Cookie', main.cookie).set('Origin', 'https://evil.example').send(body));
  const notJson = (method: Method, url: string): Probe =>
    probe(415, 'a body that is not JSON', () => call(method, url).set('Content-Type', 'text/plain').send('x'));
  const tooLarge = (method: Method, url: string, field: string): Probe =>
    probe(413, 'a JSON body over the limit', () => call(method, url).send({ [field]: 'x'.repeat(JSON_BODY_LIMIT_BYTES) }));
  const malformedId = (method: Method, url: string): Probe => probe(400, 'malformed id', () => call(method, url));
  /** An operation that takes no body, sent one: refused before anything runs. */
  const withBody = (method: Method, url: string): Probe => probe(400, 'a body, which it does not take', () => call(method, url).send({ reason: 'x' }));
  const missingId = (method: Method, url: string): Probe => probe(404, 'missing id', () => call(method, url));

  /** An answer the upstream is still streaming (slowly), once its first token is out. */
  const running = async (): Promise<Running> => {
    const who = await newSession(gated);
    const stream = h.send(who.token, { message: 'Answer slowly' });
    const [start] = await stream.until((e) => e.length >= 2);
    return { who, stream, conversationId: start.data.conversation_id as string, messageId: start.data.message_id as string };
  };
  const stop = (r: Running): Test => call('post', `/api/v1/chat/streams/${r.messageId}/stop`, r.who, gated);
  const answerOf = (stream: SseConnection): Answer => ({ status: stream.status, headers: stream.headers, body: stream.json, text: stream.raw });
  /** The response `during` gives while `r` runs; `r` is stopped after. */
  const whileRunning = async (during: (r: Running) => PromiseLike<Answer>): Promise<Answer> => {
    const r = await running();
    try {
      return await during(r);
    } finally {
      await stop(r);
      await r.stream.ended;
    }
  };

  /** How each documented operation is driven. Keyed exactly as the document lists them. */
  const OPERATIONS: Record<string, () => Probe[]> = {
    'GET /api/v1/access': () => [
      probe(200, 'no gate', () => call('get', '/api/v1/access', null)),
      probe(200, 'gated', () => call('get', '/api/v1/access', null, gated)),
    ],
    'POST /api/v1/sessions': () => [
      probe(201, 'empty body', () => call('post', '/api/v1/sessions', null).send({})),
      probe(201, 'no body', () => call('post', '/api/v1/sessions', null)),
      probe(201, 'user agent, through the gate', () => call('post', '/api/v1/sessions', null, gated).set('X-Access-Token', ACCESS_TOKEN).send({ user_agent: 'conformance' })),
      probe(400, 'user agent not a string', () => call('post', '/api/v1/sessions', null).send({ user_agent: 5 })),
      probe(401, 'gate without the access token', () => call('post', '/api/v1/sessions', null, gated).send({})),
      probe(403, 'from another origin', () => call('post', '/api/v1/sessions', null).set('Origin', 'https://evil.example').send({})),
      probe(403, 'from another site, no Origin, no cookie', () => call('post', '/api/v1/sessions', null).set('Sec-Fetch-Site', 'cross-site').send({})),
      probe(413, 'a JSON body over the limit', () => call('post', '/api/v1/sessions', null).send({ user_agent: 'x'.repeat(JSON_BODY_LIMIT_BYTES) })),
      probe(415, 'a body that is not JSON', () => call('post', '/api/v1/sessions', null).set('Content-Type', 'text/plain').send('x')),
    ],
    'POST /api/v1/sessions/current/token': () => [
      probe(200, 'renewed', () => call('post', '/api/v1/sessions/current/token')),
      probe(200, 'renewed, sent {}', () => call('post', '/api/v1/sessions/current/token').send({})),
      withBody('post', '/api/v1/sessions/current/token'),
      noToken('post', '/api/v1/sessions/current/token'),
      crossSite('post', '/api/v1/sessions/current/token'),
    ],
    'GET /api/v1/sessions/current': () => [
      probe(200, 'own', () => call('get', '/api/v1/sessions/current')),
      noToken('get', '/api/v1/sessions/current'),
    ],
    'DELETE /api/v1/sessions/current': () => [
      probe(204, 'logout', async () => call('delete', '/api/v1/sessions/current', await newSession(t))),
      withBody('delete', '/api/v1/sessions/current'),
      noToken('delete', '/api/v1/sessions/current'),
      crossSite('delete', '/api/v1/sessions/current'),
    ],
    'GET /api/v1/sessions/{id}': () => [
      probe(200, 'own', () => call('get', `/api/v1/sessions/${main.id}`)),
      malformedId('get', '/api/v1/sessions/not-an-id'),
      missingId('get', `/api/v1/sessions/${MISSING}`),
      noToken('get', `/api/v1/sessions/${main.id}`),
    ],
    'DELETE /api/v1/sessions/{id}': () => [
      probe(204, 'erased', async () => {
        const erased = await newSession(t);
        return call('delete', `/api/v1/sessions/${erased.id}`, erased);
      }),
      malformedId('delete', '/api/v1/sessions/not-an-id'),
      withBody('delete', `/api/v1/sessions/${main.id}`),
      missingId('delete', `/api/v1/sessions/${MISSING}`),
      noToken('delete', `/api/v1/sessions/${main.id}`),
      crossSite('delete', `/api/v1/sessions/${main.id}`),
    ],
    'GET /api/v1/conversations': () => [
      probe(200, 'list', () => call('get', '/api/v1/conversations')),
      probe(200, 'search found by a message', () => call('get', '/api/v1/conversations?q=OPENAI_BASE_URL')),
      probe(200, 'search found by the title', () => call('get', '/api/v1/conversations?q=Lisbon')),
      probe(400, 'limit 0', () => call('get', '/api/v1/conversations?limit=0')),
      probe(404, 'another session', () => call('get', `/api/v1/conversations?session_id=${MISSING}`)),
      probe(403, 'under a host name not served', () => call('get', '/api/v1/conversations').set('Host', 'evil.example')),
      noToken('get', '/api/v1/conversations'),
    ],
    'GET /api/v1/conversations/{id}': () => [
      probe(200, 'latest', () => call('get', `/api/v1/conversations/${conversationId}`)),
      probe(200, 'around a message', () => call('get', `/api/v1/conversations/${conversationId}?around=${userMessageId}&limit=1`)),
      probe(200, 'its answer still streaming', () => whileRunning((r) => call('get', `/api/v1/conversations/${r.conversationId}`, r.who, gated))),
      probe(200, 'its answer failed', () => call('get', `/api/v1/conversations/${failed.conversationId}`, failed.who, gated)),
      probe(400, 'two cursors', () => call('get', `/api/v1/conversations/${conversationId}?before=1&after=0`)),
      malformedId('get', '/api/v1/conversations/not-an-id'),
      missingId('get', `/api/v1/conversations/${MISSING}`),
      probe(404, 'around a missing message', () => call('get', `/api/v1/conversations/${conversationId}?around=${MISSING}`)),
      noToken('get', `/api/v1/conversations/${conversationId}`),
    ],
    'PATCH /api/v1/conversations/{id}': () => [
      probe(200, 'renamed', () => call('patch', `/api/v1/conversations/${conversationId}`).send({ title: 'Trip to Lisbon' })),
      probe(400, 'blank title', () => call('patch', `/api/v1/conversations/${conversationId}`).send({ title: ' ' })),
      probe(404, 'missing id', () => call('patch', `/api/v1/conversations/${MISSING}`).send({ title: 'x' })),
      noToken('patch', `/api/v1/conversations/${conversationId}`),
      crossSite('patch', `/api/v1/conversations/${conversationId}`, { title: 'x' }),
      tooLarge('patch', `/api/v1/conversations/${conversationId}`, 'title'),
      notJson('patch', `/api/v1/conversations/${conversationId}`),
    ],
    'DELETE /api/v1/conversations/{id}': () => [
      probe(204, 'deleted', () => call('delete', `/api/v1/conversations/${doomed.conversationId}`)),
      malformedId('delete', '/api/v1/conversations/not-an-id'),
      withBody('delete', `/api/v1/conversations/${conversationId}`),
      missingId('delete', `/api/v1/conversations/${MISSING}`),
      noToken('delete', `/api/v1/conversations/${conversationId}`),
      crossSite('delete', `/api/v1/conversations/${conversationId}`),
    ],
    'GET /api/v1/conversations/{id}/messages': () => [
      probe(200, 'older page', () => call('get', `/api/v1/conversations/${conversationId}/messages?before=3&limit=2`)),
      probe(200, 'newer page', () => call('get', `/api/v1/conversations/${conversationId}/messages?after=0`)),
      probe(400, 'limit 0', () => call('get', `/api/v1/conversations/${conversationId}/messages?limit=0`)),
      missingId('get', `/api/v1/conversations/${MISSING}/messages`),
      noToken('get', `/api/v1/conversations/${conversationId}/messages`),
    ],
    'GET /api/v1/chat/config': () => [
      probe(200, 'offline', () => call('get', '/api/v1/chat/config')),
      probe(200, 'upstream model', async () => call('get', '/api/v1/chat/config', await newSession(gated), gated)),
      noToken('get', '/api/v1/chat/config'),
    ],
    'POST /api/v1/chat': () => [
      probe(200, 'new conversation', () => call('post', '/api/v1/chat').send({ message: 'Hello' })),
      probe(200, 'with a file, in a conversation', () => call('post', '/api/v1/chat').send({ message: 'And this?', conversation_id: conversationId, file_ids: [fileId] })),
      probe(200, 'first with a key', () => call('post', '/api/v1/chat').set('Idempotency-Key', 'conformance-1').send({ message: 'Once' })),
      probe(200, 'the same again: re-attached', () => call('post', '/api/v1/chat').set('Idempotency-Key', 'conformance-1').send({ message: 'Once' })),
      probe(409, 'the key reused for another message', () => call('post', '/api/v1/chat').set('Idempotency-Key', 'conformance-1').send({ message: 'Twice' })),
      probe(400, 'blank message', () => call('post', '/api/v1/chat').send({ message: '' })),
      probe(400, 'malformed Idempotency-Key', () => call('post', '/api/v1/chat').set('Idempotency-Key', 'not a key!').send({ message: 'x' })),
      probe(404, 'missing conversation', () => call('post', '/api/v1/chat').send({ message: 'x', conversation_id: MISSING })),
      probe(404, 'missing file', () => call('post', '/api/v1/chat').send({ message: 'x', file_ids: [MISSING] })),
      noToken('post', '/api/v1/chat'),
      crossSite('post', '/api/v1/chat', { message: 'x' }),
      tooLarge('post', '/api/v1/chat', 'message'),
      notJson('post', '/api/v1/chat'),
      probe(200, 'from the upstream model', async () => call('post', '/api/v1/chat', await newSession(gated), gated).send({ message: 'Hello there' })),
      probe(200, 'the upstream failed', async () => call('post', '/api/v1/chat', await newSession(gated), gated).send({ message: 'Please fail' })),
      probe(200, 'stopped while streaming', async () => {
        const r = await running();
        await stop(r).expect(200);
        await r.stream.ended;
        return answerOf(r.stream);
      }),
      probe(409, 'an answer still running', () => whileRunning((r) =>
        call('post', '/api/v1/chat', r.who, gated).send({ message: 'x', conversation_id: r.conversationId }))),
      { ...probe(429, 'over the rate limit', async () => {
        const busy = await newSession(t);
        for (let i = 0; i < CHATS_PER_MINUTE; i++) await call('post', '/api/v1/chat', busy).send({ message: 'x' }).expect(200);
        return call('post', '/api/v1/chat', busy).send({ message: 'x' });
      }), headers: ['Retry-After'] },
    ],
    'POST /api/v1/chat/regenerate': () => [
      probe(200, 'regenerated', () => call('post', '/api/v1/chat/regenerate').send({ conversation_id: regenerable.conversationId })),
      probe(200, 'edited', () => call('post', '/api/v1/chat/regenerate').send({ conversation_id: regenerable.conversationId, message: 'Edited', message_id: regenerable.userMessageId })),
      probe(400, 'no conversation', () => call('post', '/api/v1/chat/regenerate').send({})),
      probe(404, 'missing conversation', () => call('post', '/api/v1/chat/regenerate').send({ conversation_id: MISSING })),
      probe(409, 'an answer still running', () => whileRunning((r) =>
        call('post', '/api/v1/chat/regenerate', r.who, gated).send({ conversation_id: r.conversationId }))),
      probe(409, 'not the last question', () => call('post', '/api/v1/chat/regenerate').send({ conversation_id: conversationId, message: 'x', message_id: userMessageId })),
      probe(404, 'no question of the conversation', () => call('post', '/api/v1/chat/regenerate').send({ conversation_id: regenerable.conversationId, message: 'x', message_id: MISSING })),
      noToken('post', '/api/v1/chat/regenerate'),
      crossSite('post', '/api/v1/chat/regenerate', { conversation_id: conversationId }),
      tooLarge('post', '/api/v1/chat/regenerate', 'message'),
      notJson('post', '/api/v1/chat/regenerate'),
    ],
    'GET /api/v1/chat/streams/{message_id}': () => [
      probe(200, 'replay', () => call('get', `/api/v1/chat/streams/${assistantMessageId}`)),
      probe(200, 'after an event', () => call('get', `/api/v1/chat/streams/${assistantMessageId}`).set('Last-Event-ID', '2')),
      probe(200, 'live, until stopped', () => whileRunning(async (r) => {
        const follower = h.get(r.who.token, `/api/v1/chat/streams/${r.messageId}`);
        await follower.until((e) => e.length >= 2);
        await stop(r);
        await follower.ended;
        return answerOf(follower);
      })),
      probe(200, 'a failed answer', () => call('get', `/api/v1/chat/streams/${failed.assistantMessageId}`, failed.who, gated)),
      probe(200, 'from the start, the events no longer held', async () => {
        const who = await newSession(gated);
        const answer = await chat(who, { message: 'Hi' }, gated);
        return call('get', `/api/v1/chat/streams/${answer.assistantMessageId}`, who, gated).set('Last-Event-ID', '2');
      }),
      probe(400, 'malformed Last-Event-ID', () => call('get', `/api/v1/chat/streams/${assistantMessageId}`).set('Last-Event-ID', 'abc')),
      malformedId('get', '/api/v1/chat/streams/not-an-id'),
      missingId('get', `/api/v1/chat/streams/${MISSING}`),
      probe(404, 'a user message', () => call('get', `/api/v1/chat/streams/${userMessageId}`)),
      noToken('get', `/api/v1/chat/streams/${assistantMessageId}`),
    ],
    'POST /api/v1/chat/streams/{message_id}/stop': () => [
      probe(200, 'already ended', () => call('post', `/api/v1/chat/streams/${assistantMessageId}/stop`)),
      probe(200, 'while streaming', async () => {
        const r = await running();
        const res = await stop(r);
        await r.stream.ended;
        return res;
      }),
      probe(200, 'a failed answer', () => call('post', `/api/v1/chat/streams/${failed.assistantMessageId}/stop`, failed.who, gated)),
      malformedId('post', '/api/v1/chat/streams/not-an-id/stop'),
      withBody('post', `/api/v1/chat/streams/${assistantMessageId}/stop`),
      missingId('post', `/api/v1/chat/streams/${MISSING}/stop`),
      noToken('post', `/api/v1/chat/streams/${assistantMessageId}/stop`),
      crossSite('post', `/api/v1/chat/streams/${assistantMessageId}/stop`),
    ],
    'POST /api/v1/chat/feedback': () => [
      probe(200, 'with a comment', () => call('post', '/api/v1/chat/feedback').send({ message_id: assistantMessageId, feedback: 'positive', comment: 'Clear' })),
      probe(200, 'without one', () => call('post', '/api/v1/chat/feedback').send({ message_id: assistantMessageId, feedback: 'negative' })),
      probe(400, 'a user message', () => call('post', '/api/v1/chat/feedback').send({ message_id: userMessageId, feedback: 'positive' })),
      probe(400, 'unknown rating', () => call('post', '/api/v1/chat/feedback').send({ message_id: assistantMessageId, feedback: 'meh' })),
      probe(404, 'missing message', () => call('post', '/api/v1/chat/feedback').send({ message_id: MISSING, feedback: 'positive' })),
      noToken('post', '/api/v1/chat/feedback'),
      crossSite('post', '/api/v1/chat/feedback', { message_id: assistantMessageId, feedback: 'positive' }),
      tooLarge('post', '/api/v1/chat/feedback', 'comment'),
      notJson('post', '/api/v1/chat/feedback'),
    ],
    'POST /api/v1/files/upload': () => [
      probe(201, 'a text file', () => upload(main, 'notes.txt', 'Meeting notes\n')),
      probe(201, 'into a conversation', () => upload(main, 'notes.md', '# Notes\n').field('conversation_id', conversationId)),
      probe(201, 'a PDF', async () => upload(main, 'notes.pdf', await makePdf(2, 1, (page) => `Page ${page}`))),
      probe(400, 'no file', () => call('post', '/api/v1/files/upload').field('conversation_id', conversationId)),
      probe(404, 'missing conversation', () => upload(main, 'notes.txt', 'x').field('conversation_id', MISSING)),
      probe(413, 'over MAX_UPLOAD_BYTES', () => upload(main, 'big.txt', 'x'.repeat(MAX_UPLOAD_BYTES + 1))),
      probe(415, 'an extension not accepted', () => upload(main, 'tool.exe', 'MZ')),
      probe(422, 'JSON nested too deep', () => upload(main, 'deep.json', `${'['.repeat(1001)}${']'.repeat(1001)}`)),
      noToken('post', '/api/v1/files/upload'),
      probe(403, 'cookie from another origin', () => t.http().post('/api/v1/files/upload').set('Cookie', main.cookie).set('Origin', 'https://evil.example')
        .attach('file', Buffer.from('x'), 'x.txt')),
    ],
    'GET /api/v1/files': () => [
      probe(200, 'all', () => call('get', '/api/v1/files')),
      probe(200, 'one conversation', () => call('get', `/api/v1/files?conversation_id=${conversationId}`)),
      probe(400, 'malformed conversation id', () => call('get', '/api/v1/files?conversation_id=x')),
      probe(404, 'missing conversation', () => call('get', `/api/v1/files?conversation_id=${MISSING}`)),
      noToken('get', '/api/v1/files'),
    ],
    'GET /api/v1/files/{id}': () => [
      probe(200, 'own', () => call('get', `/api/v1/files/${fileId}`)),
      malformedId('get', '/api/v1/files/not-an-id'),
      missingId('get', `/api/v1/files/${MISSING}`),
      noToken('get', `/api/v1/files/${fileId}`),
    ],
    'DELETE /api/v1/files/{id}': () => [
      probe(204, 'deleted', () => call('delete', `/api/v1/files/${doomed.fileId}`)),
      malformedId('delete', '/api/v1/files/not-an-id'),
      withBody('delete', `/api/v1/files/${fileId}`),
      missingId('delete', `/api/v1/files/${MISSING}`),
      noToken('delete', `/api/v1/files/${fileId}`),
      crossSite('delete', `/api/v1/files/${fileId}`),
    ],
    'GET /api/v1/files/{id}/content': () => [
      probe(200, 'the bytes', () => call('get', `/api/v1/files/${fileId}/content`)),
      malformedId('get', '/api/v1/files/not-an-id/content'),
      missingId('get', `/api/v1/files/${MISSING}/content`),
      noToken('get', `/api/v1/files/${fileId}/content`),
    ],
    'GET /api/v1/health': () => [
      probe(200, 'offline', () => call('get', '/api/v1/health', null)),
      probe(403, 'under a host name not served', () => call('get', '/api/v1/health', null).set('Host', 'evil.example')),
      probe(200, 'upstream model', () => call('get', '/api/v1/health', null, gated)),
    ],
    'GET /api/v1/health/live': () => [
      probe(200, 'live', () => call('get', '/api/v1/health/live', null)),
      probe(200, 'under any host name (a probe)', () => call('get', '/api/v1/health/live', null).set('Host', 'evil.example')),
    ],
    'GET /api/v1/health/ready': () => [probe(200, 'ready', () => call('get', '/api/v1/health/ready', null))],
  };

  beforeAll(async () => {
    const env = {
      RATE_LIMIT_REQUESTS_PER_MINUTE: '10000', RATE_LIMIT_SESSIONS_PER_MINUTE: '1000', RATE_LIMIT_CHAT_PER_MINUTE: String(CHATS_PER_MINUTE),
      MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES), JSON_BODY_LIMIT_BYTES: String(JSON_BODY_LIMIT_BYTES),
    };
    [t, h] = await Promise.all([createTestApp('sqlite', env), createChatHarness('sqlite', { ...env, ACCESS_TOKEN, STREAM_REPLAY_MAX_ANSWERS: '0' })]);
    gated = h.t;
    // Slow enough to act on a running answer (10 s in all); each row that starts one stops it.
    h.fake.on('slowly', { tokens: Array.from({ length: 500 }, (_, i) => `word${i} `), tokenDelayMs: 20 });
    h.fake.on('fail', { status: 400 });
    doc = (await t.http().get('/api/docs-json').expect(200)).body as OpenApiDocument & Components;
    validator = new OpenApiValidator(withHeadersResolved(doc));

    // A conversation of two turns, a file attached to the second and feedback on the first answer;
    // one to regenerate, one conversation and one file to delete; an answer the upstream failed.
    main = await newSession(t);
    ({ conversationId, userMessageId, assistantMessageId } = await chat(main, { message: 'Plan a trip to Lisbon' }));
    fileId = (await upload(main, 'itinerary.txt', 'Day 1: Alfama\n').field('conversation_id', conversationId).expect(201)).body.file_id;
    await chat(main, { message: 'Use the itinerary', conversation_id: conversationId, file_ids: [fileId] });
    await call('post', '/api/v1/chat/feedback').send({ message_id: assistantMessageId, feedback: 'positive' }).expect(200);
    regenerable = await chat(main, { message: 'Another question' });
    doomed.conversationId = (await chat(main, { message: 'Delete me' })).conversationId;
    doomed.fileId = (await upload(main, 'doomed.txt', 'x').expect(201)).body.file_id;
    const failing = await newSession(gated);
    failed = { who: failing, ...await chat(failing, { message: 'Please fail' }, gated) };
  });
  afterAll(async () => { await Promise.all([t?.close(), h?.close()]); });

  it('has a row for exactly the documented operations', () => {
    expect(Object.keys(OPERATIONS).sort()).toEqual(validator.operations().sort());
  });

  it('says what strict OpenAPI 3.0 readers need: a nullable object written in place (nullable does not reach into an allOf $ref), closed request bodies', () => {
    const schemas = doc.components.schemas as Record<string, { properties?: Record<string, Record<string, unknown>>; additionalProperties?: unknown }>;
    const nullableRefs = Object.entries(schemas).flatMap(([name, s]) => Object.entries(s.properties ?? {})
      .filter(([, p]) => p.nullable === true && Array.isArray(p.allOf)).map(([property]) => `${name}.${property}`));
    expect(nullableRefs).toEqual([]);
    expect(schemas.MessageDto.properties?.context).toMatchObject({ type: 'object', nullable: true, properties: { truncated_files: { type: 'array' } } });
    for (const body of ['SendMessageDto', 'RegenerateDto', 'UpdateConversationDto', 'FeedbackDto', 'CreateSessionDto']) expect(schemas[body].additionalProperties, body).toBe(false);
    // Not what an answer carries: a response may gain a field.
    expect(schemas.MessageDto.additionalProperties).toBeUndefined();
  });

  it('documents the headers the API sends: X-Request-Id on every response, the session cookie where it is set, Retry-After, Allow', () => {
    const problems: string[] = [];
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, response] of Object.entries(op.responses)) {
          const where = `${method.toUpperCase()} ${path} ${status}`;
          if (response.headers?.['X-Request-Id'] === undefined) problems.push(`${where}: no X-Request-Id`);
          // The health reports' own 503 is a report, for probes: no Retry-After.
          if ((status === '429' || status === '503') && !path.startsWith('/api/v1/health') && response.headers?.['Retry-After'] === undefined) problems.push(`${where}: no Retry-After`);
        }
      }
    }
    expect(problems).toEqual([]);
    const headerOf = (path: string, method: string, status: string, name: string): unknown => doc.paths[path][method].responses[status].headers?.[name];
    expect(headerOf('/api/v1/sessions', 'post', '201', 'Set-Cookie')).toEqual({ $ref: '#/components/headers/SessionCookie' });
    expect(headerOf('/api/v1/sessions/current/token', 'post', '200', 'Set-Cookie')).toEqual({ $ref: '#/components/headers/SessionCookie' });
    expect(headerOf('/api/v1/sessions/current', 'delete', '204', 'Set-Cookie')).toEqual({ $ref: '#/components/headers/SessionCookieCleared' });
    expect(headerOf('/api/v1/sessions/{id}', 'delete', '204', 'Set-Cookie')).toEqual({ $ref: '#/components/headers/SessionCookieCleared' });
    // Renewed on use: any answer to a cookie-authenticated request may carry it.
    expect(headerOf('/api/v1/conversations', 'get', '200', 'Set-Cookie')).toEqual({ $ref: '#/components/headers/SessionCookieRenewed' });
    expect(headerOf('/api/v1/chat', 'post', '503', 'Retry-After')).toMatchObject({ schema: { type: 'integer' } });
    expect(doc.components.headers?.RequestId).toMatchObject({ required: true });
    expect(doc.components.responses?.MethodNotAllowed.headers?.Allow).toEqual({ $ref: '#/components/headers/Allow' });
  });

  it('sends the documented headers: X-Request-Id, Set-Cookie where required, Allow on a 405', async () => {
    const resolved = withHeadersResolved(doc);
    const required = (path: string, method: string, status: number): string[] => Object.entries(resolved.paths[path][method].responses[String(status)].headers ?? {})
      .filter(([, header]) => (header as { required?: boolean }).required === true).map(([name]) => name);
    const created = await call('post', '/api/v1/sessions', null).send({}).expect(201);
    expect(required('/api/v1/sessions', 'post', 201).sort()).toEqual(['Set-Cookie', 'X-Request-Id']);
    for (const name of required('/api/v1/sessions', 'post', 201)) expect(created.headers[name.toLowerCase()], name).toBeDefined();
    const who = { token: created.body.token as string, id: created.body.session.id as string, cookie: '' };
    const renewed = await call('post', '/api/v1/sessions/current/token', who).expect(200);
    for (const name of required('/api/v1/sessions/current/token', 'post', 200)) expect(renewed.headers[name.toLowerCase()], name).toBeDefined();
    const loggedOut = await call('delete', '/api/v1/sessions/current', who).expect(204);
    expect(required('/api/v1/sessions/current', 'delete', 204).sort()).toEqual(['Set-Cookie', 'X-Request-Id']);
    for (const name of required('/api/v1/sessions/current', 'delete', 204)) expect(loggedOut.headers[name.toLowerCase()], name).toBeDefined();
    // A 405 is no operation of the document: the shared response says what it carries.
    const wrong = await call('delete', '/api/v1/chat').expect(405);
    const shared = resolved.components.responses!.MethodNotAllowed;
    for (const [name, header] of Object.entries(shared.headers ?? {})) {
      if ((header as { required?: boolean }).required) expect(wrong.headers[name.toLowerCase()], name).toBeDefined();
    }
    expect(wrong.headers.allow).toBe('POST');
    expect(wrong.body.error.code).toBe('METHOD_NOT_ALLOWED');
  });

  it.each(Object.keys(OPERATIONS))('%s answers as documented', async (operation) => {
    const problems: string[] = [];
    for (const { status, why, send, headers = [] } of OPERATIONS[operation]()) {
      const res = await send();
      if (res.status !== status) problems.push(`${why}: expected ${status}, got ${res.status} ${res.text.slice(0, 300)}`);
      for (const name of headers) if (res.headers[name.toLowerCase()] === undefined) problems.push(`${why}: no ${name} header`);
      problems.push(...validator.check(operation, res).map((p) => `${why}: ${p}`));
    }
    expect(problems).toEqual([]);
  });
});
