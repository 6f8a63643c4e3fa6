import { TestBed } from '@angular/core/testing';
import { firstValueFrom, toArray } from 'rxjs';
import { ApiError } from '../core/api-error';
import { ChatApi, StreamCutError } from './chat-api.service';
import type { StreamedEvent } from './chat-events';

const encoder = new TextEncoder();

function sseResponse(chunks: string[], { keepOpen = false } = {}): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(encoder.encode(chunk));
      if (!keepOpen) controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { 'Content-Type': 'text/event-stream' } });
}

function jsonResponse(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
}

const START = 'id: 0\ndata: {"type":"start","conversation_id":"c1","user_message_id":"u1","message_id":"m1","provider":"openai","model":"gpt","finished":false}\n\n';
const TOKEN = (seq: number, token: string): string => `id: ${seq}\ndata: {"type":"token","token":${JSON.stringify(token)},"finished":false}\n\n`;
const DONE = (seq: number): string => `id: ${seq}\ndata: {"type":"done","finished":true,"message_id":"m1","status":"complete","finish_reason":"stop"}\n\n`;

describe('ChatApi', () => {
  let fetchMock: ReturnType<typeof vi.fn>;
  let api: ChatApi;

  beforeEach(() => {
    fetchMock = vi.fn();
    vi.stubGlobal('fetch', fetchMock);
    TestBed.configureTestingModule({});
    api = TestBed.inject(ChatApi);
  });

  afterEach(() => vi.unstubAllGlobals());

  it('turns the POST stream into typed events carrying their ids', async () => {
    fetchMock.mockResolvedValue(sseResponse([START, TOKEN(1, 'Hel'), ': ping\n\n', TOKEN(2, 'lo'), DONE(3)]));
    const events = await firstValueFrom(api.send({ message: 'Hi' }, 'key-1').pipe(toArray()));
    expect(events.map((e) => e.type)).toEqual(['start', 'token', 'token', 'done']);
    expect(events.map((e) => e.eventId)).toEqual(['0', '1', '2', '3']);
    expect(events.filter((e) => e.type === 'token').map((e) => (e.type === 'token' ? e.token : ''))).toEqual(['Hel', 'lo']);
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe('/api/v1/chat');
    expect(init.method).toBe('POST');
    expect(JSON.parse(init.body as string)).toEqual({ message: 'Hi' });
    expect((init.headers as Record<string, string>)['Idempotency-Key']).toBe('key-1');
  });

  it('aborts the request when the subscriber leaves, without calling stop', async () => {
    fetchMock.mockResolvedValue(sseResponse([START], { keepOpen: true }));
    const seen: StreamedEvent[] = [];
    const subscription = api.send({ message: 'Hi' }, 'k').subscribe((e) => seen.push(e));
    await vi.waitFor(() => expect(seen).toHaveLength(1));
    subscription.unsubscribe();
    const init = fetchMock.mock.calls[0]?.[1] as RequestInit;
    expect(init.signal?.aborted).toBe(true);
    expect(fetchMock).toHaveBeenCalledTimes(1);
  });

  it('fails with the error envelope, including when to retry, before the stream opens', async () => {
    fetchMock.mockResolvedValue(jsonResponse(429,
      { error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Slow down', details: { retry_after_seconds: 42 } } }, { 'Retry-After': '42' }));
    const error = await firstValueFrom(api.send({ message: 'Hi' }, 'k')).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 429, code: 'RATE_LIMIT_EXCEEDED', retryAfterSeconds: 42 });
  });

  it('creates a session on 401 and retries once', async () => {
    fetchMock
      .mockResolvedValueOnce(jsonResponse(401, { error: { code: 'UNAUTHORIZED', message: 'Sign in first' } }))
      .mockResolvedValueOnce(jsonResponse(201, { token: 't' }))
      .mockResolvedValueOnce(sseResponse([START, DONE(1)]));
    const events = await firstValueFrom(api.send({ message: 'Hi' }, 'k').pipe(toArray()));
    expect(events).toHaveLength(2);
    expect(fetchMock.mock.calls.map((c) => c[0])).toEqual(['/api/v1/chat', '/api/v1/sessions', '/api/v1/chat']);
  });

  it('reports a body that ends before the final event as a cut, with the last id seen', async () => {
    fetchMock.mockResolvedValue(sseResponse([START, TOKEN(1, 'a'), TOKEN(2, 'b')]));
    const error = await firstValueFrom(api.send({ message: 'Hi' }, 'k').pipe(toArray())).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StreamCutError);
    expect((error as StreamCutError).lastEventId).toBe('2');
  });

  it('maps a dropped network to an offline error', async () => {
    fetchMock.mockRejectedValue(new TypeError('Failed to fetch'));
    const error = await firstValueFrom(api.send({ message: 'Hi' }, 'k')).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NETWORK_ERROR', isNetwork: true });
  });

  it('resumes with Last-Event-ID and continues numbering from it', async () => {
    fetchMock.mockResolvedValue(sseResponse([TOKEN(5, 'x'), DONE(6)]));
    const events = await firstValueFrom(api.resume('m1', '4').pipe(toArray()));
    const [url, init] = fetchMock.mock.calls[0] as [string, RequestInit];
    expect(url).toBe('/api/v1/chat/streams/m1');
    expect((init.headers as Record<string, string>)['Last-Event-ID']).toBe('4');
    expect(events.map((e) => e.eventId)).toEqual(['5', '6']);
  });

  it('skips malformed and unknown events', async () => {
    fetchMock.mockResolvedValue(sseResponse(['data: not json\n\n', 'data: {"type":"mystery"}\n\n', START, DONE(1)]));
    const events = await firstValueFrom(api.send({ message: 'Hi' }, 'k').pipe(toArray()));
    expect(events.map((e) => e.type)).toEqual(['start', 'done']);
  });

  it('stops and sends feedback on their own endpoints', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse(200, { message_id: 'm1', status: 'stopped' }))
      .mockResolvedValueOnce(jsonResponse(200, { message_id: 'm1', feedback: 'negative', comment: 'wrong' }));
    await api.stop('m1');
    await api.feedback('m1', 'negative', 'wrong');
    expect(fetchMock.mock.calls[0]?.[0]).toBe('/api/v1/chat/streams/m1/stop');
    expect(fetchMock.mock.calls[1]?.[0]).toBe('/api/v1/chat/feedback');
    expect(JSON.parse((fetchMock.mock.calls[1]?.[1] as RequestInit).body as string))
      .toEqual({ message_id: 'm1', feedback: 'negative', comment: 'wrong' });
  });

  it('sends a rating with an empty comment without one, which the server stores as none (a rating turned around)', async () => {
    fetchMock.mockResolvedValueOnce(jsonResponse(200, { message_id: 'm1', feedback: 'positive', comment: null }));
    await api.feedback('m1', 'positive', '');
    expect(JSON.parse((fetchMock.mock.calls[0]?.[1] as RequestInit).body as string)).toEqual({ message_id: 'm1', feedback: 'positive' });
  });
});
