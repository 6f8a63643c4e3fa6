import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A real loopback HTTP server speaking the OpenAI Chat Completions streaming wire format
 * (`POST /v1/chat/completions` with `stream: true`: `data: <chunk>` events, a finish_reason,
 * a usage chunk when `stream_options.include_usage`, then `data: [DONE]`), with scripted faults.
 * Point the official `openai` SDK (or Parley, via OPENAI_BASE_URL) at `baseUrl`.
 *
 * It imports only Node built-ins, so scripts can load it too (bench/chat-ttft.mjs transpiles it).
 *
 * ```ts
 * const fake = new FakeOpenAiServer();
 * const baseUrl = await fake.start();                  // http://127.0.0.1:<port>/v1
 * fake.on('flaky', { status: 429, headers: { 'retry-after': '0' } }, { tokens: ['Hi', '!'] });
 * fake.enqueue({ stallAfter: 2 });                     // for the next request no rule matches
 * fake.requests[0].headers.authorization;              // what the upstream received
 * await fake.stop();
 * ```
 */
export interface FakeReply {
  /** Content deltas, one chunk each. Default: "You said: " and the last user message, word by word. */
  tokens?: string[];
  /** Reasoning deltas sent before the tokens, one chunk each, in the field `reasoningField` names. */
  reasoning?: string[];
  /** Default `reasoning_content` (DeepSeek, llama.cpp, LM Studio); `reasoning` as vLLM ≥ 0.10, OpenRouter and Ollama. */
  reasoningField?: 'reasoning_content' | 'reasoning';
  /** Answer with this status and an OpenAI-style JSON error body instead of a stream. */
  status?: number;
  /** Extra response headers (e.g. `retry-after`). */
  headers?: Record<string, string>;
  /** Never answer: no status line, no headers (a client's first-byte timeout must fire). */
  hangBeforeHeaders?: boolean;
  /** Send headers, then nothing at all (the body's first byte never comes). */
  hangAfterHeaders?: boolean;
  /** After this many tokens, send nothing more but keep the connection open (a stall mid-stream). */
  stallAfter?: number;
  /** Write every event in several TCP packets, cut inside the JSON and between the two line breaks. */
  splitSeparators?: boolean;
  /** Line breaks of the SSE framing (default "\n"). */
  lineEnding?: '\n' | '\r\n';
  /** After this many tokens, send an event whose data is not JSON. */
  badJsonAfter?: number;
  /** After the tokens, send one line that never ends, 1 KB per write, until the client closes the connection. */
  endlessLine?: boolean;
  /** After this many tokens, send an `{"error": {...}}` event (as OpenAI does mid-stream), then end. */
  errorAfter?: number;
  /** After this many tokens, destroy the socket (the connection is cut). */
  dropAfter?: number;
  /** End the body without `data: [DONE]` (after the finish reason and the usage, as llama.cpp's server may). */
  omitDone?: boolean;
  /** Send neither the finish reason nor the usage (with `omitDone`: a stream that just stops after its tokens). */
  omitFinish?: boolean;
  /** After the finish reason and the usage, send nothing more and keep the connection open (no `[DONE]`, no end). */
  holdAfterFinish?: boolean;
  /** Instead of a stream, write these bytes as the 200 body, then end (raw SSE frames, a JSON completion, HTML). */
  body?: string;
  /** The 200 response's content type (default text/event-stream; application/json when `body` is set). */
  contentType?: string;
  /** With `status` (an error), this body instead of OpenAI's `{"error": {...}}`. */
  errorBody?: string;
  /** Send the whole body, its end included, in one write (after the headers): the client reads it all at once. */
  oneWrite?: boolean;
  /** Delay before each token (slow tokens). */
  tokenDelayMs?: number;
  /**
   * After the tokens, send them again and again, never finishing, until the client closes the
   * connection (a model that ignores max_tokens, or trickles forever with `tokenDelayMs`). Without
   * a delay they go as fast as the client reads, yielding to the event loop between tokens.
   */
  endless?: boolean;
  /** Delay before the response headers. */
  headersDelayMs?: number;
  /** Default "stop"; anything else JSON can carry, as a careless server might send it. */
  finishReason?: unknown;
  /** The usage chunk's counts as sent (default: the prompt's length in characters and the number of tokens). */
  usage?: { prompt_tokens: unknown; completion_tokens: unknown };
}

export interface RecordedRequest {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: ChatRequestBody;
  /** Text of the last user message. */
  lastUserText: string;
}

interface ChatRequestBody {
  model?: string;
  stream?: boolean;
  stream_options?: { include_usage?: boolean };
  messages?: { role: string; content: unknown }[];
  [key: string]: unknown;
}

interface Rule { match: string | RegExp; replies: FakeReply[]; served: number }

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves when `res` can take more (its client read), or is gone. */
function drainOrClose(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done).off('close', done);
      resolve();
    };
    res.on('drain', done).on('close', done);
  });
}

function lastUserTextOf(body: ChatRequestBody): string {
  const last = [...(body.messages ?? [])].reverse().find((m) => m.role === 'user');
  return typeof last?.content === 'string' ? last.content : '';
}

export class FakeOpenAiServer {
  /** Every request received, in order (bodies parsed). */
  readonly requests: RecordedRequest[] = [];
  /** TCP connections accepted so far (a client that reuses keep-alive connections opens few). */
  connections = 0;
  /** Requests whose response has not closed yet (ended, or its connection gone). */
  openResponses = 0;
  /** What a request gets when no rule matches and the queue is empty. */
  defaultReply: FakeReply = {};
  private readonly rules: Rule[] = [];
  private readonly queue: FakeReply[] = [];
  private server?: Server;
  private counter = 0;

  /** Listens on 127.0.0.1 (port 0: any free port); returns the base URL for the SDK (ends in /v1). */
  async start(port = 0): Promise<string> {
    const server = createServer((req, res) => { void this.handle(req, res); });
    server.keepAliveTimeout = 60_000;
    server.on('connection', () => { this.connections++; });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return this.baseUrl;
  }

  get baseUrl(): string {
    if (!this.server) throw new Error('FakeOpenAiServer not started');
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  /** Closes the server and every open connection (hung and stalled ones too). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /**
   * Requests whose last user message contains `match` (or matches the RegExp) get `replies`
   * in turn, one per request (so retries see the next one); the last reply then repeats.
   */
  on(match: string | RegExp, ...replies: FakeReply[]): this {
    this.rules.push({ match, replies: replies.length > 0 ? replies : [{}], served: 0 });
    return this;
  }

  /** Replies for the next requests that no rule matches, in order. */
  enqueue(...replies: FakeReply[]): this {
    this.queue.push(...replies);
    return this;
  }

  /** Forgets rules, queue and recorded requests. */
  reset(): void {
    this.rules.length = 0;
    this.queue.length = 0;
    this.requests.length = 0;
  }

  /** Requests whose last user message contains `text`. */
  requestsFor(text: string): RecordedRequest[] {
    return this.requests.filter((r) => r.lastUserText.includes(text));
  }

  private pick(lastUserText: string): FakeReply {
    const rule = this.rules.find((r) => (typeof r.match === 'string' ? lastUserText.includes(r.match) : r.match.test(lastUserText)));
    if (rule) return rule.replies[Math.min(rule.served++, rule.replies.length - 1)];
    return this.queue.shift() ?? this.defaultReply;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.openResponses++;
    res.once('close', () => { this.openResponses--; });
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    let body: ChatRequestBody = {};
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as ChatRequestBody;
    } catch {
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'bad json', type: 'invalid_request_error' } }));
      return;
    }
    const lastUserText = lastUserTextOf(body);
    this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, lastUserText });
    if (req.method !== 'POST' || !req.url?.endsWith('/chat/completions')) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'not found', type: 'invalid_request_error' } }));
      return;
    }
    const reply = this.pick(lastUserText);
    if (reply.hangBeforeHeaders) return; // the connection stays open until the client gives up or stop()
    if (reply.headersDelayMs) await sleep(reply.headersDelayMs);
    if (reply.status !== undefined && reply.status >= 300) {
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
      res.end(reply.errorBody ?? JSON.stringify({ error: { message: `scripted ${reply.status}`, type: reply.status === 429 ? 'rate_limit_exceeded' : 'server_error', code: null } }));
      return;
    }
    if (reply.body !== undefined) {
      res.writeHead(200, { 'content-type': reply.contentType ?? 'application/json', ...reply.headers });
      res.end(reply.body);
      return;
    }
    const tokens = reply.tokens ?? ['You said:', ...lastUserText.split(/(?=\s)/).filter((t) => t.length > 0)];
    const id = `chatcmpl-fake-${++this.counter}`;
    const model = body.model ?? 'fake-model';
    const created = Math.floor(Date.now() / 1000);
    if (body.stream !== true) {
      res.writeHead(200, { 'content-type': 'application/json', ...reply.headers });
      res.end(JSON.stringify({
        id, object: 'chat.completion', created, model,
        choices: [{ index: 0, message: { role: 'assistant', content: tokens.join('') }, finish_reason: reply.finishReason ?? 'stop' }],
        usage: { prompt_tokens: 10, completion_tokens: tokens.length, total_tokens: 10 + tokens.length },
      }));
      return;
    }
    res.writeHead(200, { 'content-type': reply.contentType ?? 'text/event-stream', 'cache-control': 'no-cache', ...reply.headers });
    res.flushHeaders();
    if (reply.hangAfterHeaders) return;
    const eol = reply.lineEnding ?? '\n';
    let held = '';
    const send = async (data: string): Promise<void> => {
      const frame = `data: ${data}${eol}${eol}`;
      if (reply.oneWrite) { held += frame; return; }
      if (!reply.splitSeparators) { res.write(frame); return; }
      // Cut inside the payload, after the first line break, and between the two line breaks.
      const cuts = [Math.floor(frame.length / 2), frame.length - eol.length, frame.length - 1].filter((c, i, a) => c > 0 && a.indexOf(c) === i).sort((a, b) => a - b);
      let from = 0;
      for (const cut of [...cuts, frame.length]) {
        res.write(frame.slice(from, cut));
        from = cut;
        await sleep(2);
      }
    };
    const chunk = (delta: Record<string, unknown>, finishReason: unknown): string =>
      JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [{ index: 0, delta, finish_reason: finishReason }] });

    await send(chunk({ role: 'assistant', content: '' }, null));
    for (const thought of reply.reasoning ?? []) {
      if (reply.tokenDelayMs) await sleep(reply.tokenDelayMs);
      await send(chunk({ content: null, [reply.reasoningField ?? 'reasoning_content']: thought }, null));
    }
    for (let i = 0; i < tokens.length; i++) {
      if (res.destroyed) return;
      if (reply.stallAfter === i) return; // open, silent
      if (reply.dropAfter === i) {
        // Let what was written reach the client first: a reset can discard unread data.
        await sleep(30);
        res.socket?.destroy();
        return;
      }
      if (reply.badJsonAfter === i) { await send('{"id": "broken", "choices": [{'); res.end(); return; }
      if (reply.errorAfter === i) {
        await send(JSON.stringify({ error: { message: 'The server had an error while processing your request.', type: 'server_error', code: null } }));
        res.end();
        return;
      }
      if (reply.tokenDelayMs) await sleep(reply.tokenDelayMs);
      await send(chunk({ content: tokens[i] }, null));
    }
    if (reply.stallAfter === tokens.length) return;
    if (reply.endlessLine) {
      const piece = 'x'.repeat(1024);
      res.write('data: {"choices": [{"delta": {"content": "');
      while (!res.destroyed) {
        if (!res.write(piece)) await drainOrClose(res);
        else await new Promise<void>((resolve) => setImmediate(resolve));
      }
      return;
    }
    if (reply.endless && tokens.length > 0) {
      for (let i = 0; !res.destroyed; i++) {
        if (reply.tokenDelayMs) await sleep(reply.tokenDelayMs);
        if (res.destroyed) return;
        if (!res.write(`data: ${chunk({ content: tokens[i % tokens.length] }, null)}${eol}${eol}`)) await drainOrClose(res);
        else if (!reply.tokenDelayMs) await new Promise<void>((resolve) => setImmediate(resolve));
      }
      return;
    }
    if (reply.omitFinish) { res.end(held); return; }
    await send(chunk({}, reply.finishReason ?? 'stop'));
    if (body.stream_options?.include_usage) {
      const prompt = JSON.stringify(body.messages ?? []).length;
      const usage = reply.usage ?? { prompt_tokens: prompt, completion_tokens: tokens.length };
      await send(JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: [], usage: { ...usage, total_tokens: prompt + tokens.length } }));
    }
    if (reply.holdAfterFinish) return; // open, silent, until the client closes
    if (!reply.omitDone) await send('[DONE]');
    res.end(held);
  }
}
