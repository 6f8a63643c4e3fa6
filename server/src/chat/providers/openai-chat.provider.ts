import type { IncomingMessage } from 'node:http';
import OpenAI, { APIConnectionError, APIConnectionTimeoutError, APIError, APIUserAbortError } from 'openai';
import type { ChatCompletionChunk, ChatCompletionCreateParamsStreaming } from 'openai/resources/chat/completions';
import type { AppConfig } from '../../config/app-config.js';
import { MAX_SSE_LINE_CHARS, SseLineTooLongError, SseParser } from '../sse-parser.js';
import {
  type ChatProvider, type CompletionRequest, isOutOfQuota, ProviderError, type ProviderChunk,
} from './chat-provider.js';
import { type GatedRequestInit, NodeHttpFetch, SEND_WHEN } from './node-http-fetch.js';
import { ReasoningBlock, reasoningOf } from './reasoning-block.js';

const OFFICIAL_BASE_URL = 'https://api.openai.com/v1';
/** A Retry-After longer than this is not waited for: the user would rather see the error. */
const MAX_RETRY_AFTER_MS = 20_000;
const BACKOFF_BASE_MS = 250;
const BACKOFF_MAX_MS = 8_000;
/** The longest delay a Node timer takes (~24.8 days). */
const LONGEST_TIMER_MS = 2 ** 31 - 1;
/** After a finish reason, how long the usage (and `[DONE]`) is waited for before the answer counts as whole. */
const FINISHED_GRACE_MS = 1_500;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) { reject(new ProviderError('connection', 'aborted')); return; }
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    const onAbort = (): void => { clearTimeout(timer); reject(new ProviderError('connection', 'aborted')); };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** Retry-After (seconds or HTTP date) or the non-standard retry-after-ms, in ms. */
function retryAfterMs(headers: Headers | undefined): number | undefined {
  const ms = Number(headers?.get('retry-after-ms') ?? NaN);
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const raw = headers?.get('retry-after');
  if (raw === null || raw === undefined) return undefined;
  const seconds = Number(raw);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(raw);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/** What the upstream worker adds to a completion (upstream.worker.ts). */
export interface StreamHooks {
  /**
   * The SDK builds the request at once and it goes out only once this resolves (never if it
   * rejects): the worker builds a prepared completion's request while the main thread stores the
   * turn (ChatProvider.prepare).
   */
  sendWhen?: Promise<void>;
  /**
   * Called as `[DONE]` is read, inside the read that brought it: the completion has succeeded
   * (its promise resolves too, but only after Node's HTTP client has ended the response and
   * pooled its socket, ~0.35 ms later at 50 streams on a slow machine: docs/performance.md).
   */
  onDone?: () => void;
}

interface Attempt {
  /** Why this attempt failed. */
  error: ProviderError;
  /** Set when it may be retried: after so many ms (Retry-After), or after our backoff. */
  retryAfter?: number | 'backoff';
}

/**
 * Any OpenAI-compatible Chat Completions server (OpenAI, Ollama, vLLM, LM Studio, llama.cpp)
 * through the official SDK. The base URL and key come from operator config only, and the
 * request carries nothing of the caller's (no cookie, no token): the SDK builds it from scratch.
 *
 * The SDK builds and sends the request (over NodeHttpFetch, its `fetch` option) and classifies
 * HTTP errors; the body's SSE is read here, because the SDK's stream ends silently both when
 * `[DONE]` is missing and when it is aborted, and has no idle timeout. Its own retries are off
 * (maxRetries 0): we retry only before the first token, so that a reply is never sent twice.
 */
export class OpenAiChatProvider implements ChatProvider {
  readonly name = 'openai' as const;
  readonly isDemo = false;
  readonly model: string;
  private readonly client: OpenAI;
  private readonly isOfficial: boolean;

  constructor(private readonly llm: AppConfig['llm'], private readonly transport = new NodeHttpFetch()) {
    this.model = llm.model;
    this.isOfficial = !llm.baseUrl;
    this.client = new OpenAI({
      apiKey: llm.apiKey,
      baseURL: llm.baseUrl ?? OFFICIAL_BASE_URL,
      // Never the SDK's 10-minute default with 2 silent retries; and nothing read from process.env.
      maxRetries: 0,
      timeout: llm.upstreamTimeoutMs,
      organization: null,
      project: null,
      fetch: this.transport.fetch,
    });
  }

  /** Closes the idle upstream connections (Nest calls it at application shutdown). */
  onApplicationShutdown(): void {
    this.transport.close();
  }

  stream(request: CompletionRequest, signal: AbortSignal, onChunk: (chunk: ProviderChunk) => void): Promise<void> {
    return this.streamWith(request, signal, onChunk, {});
  }

  /** As `stream`, with the upstream worker's hooks (StreamHooks). */
  async streamWith(request: CompletionRequest, signal: AbortSignal, onChunk: (chunk: ProviderChunk) => void, hooks: StreamHooks): Promise<void> {
    try {
      for (let attempt = 0; ; attempt++) {
        const outcome = await this.attempt(request, signal, onChunk, hooks);
        if (outcome === undefined) return;
        if (signal.aborted || outcome.retryAfter === undefined || attempt >= this.llm.upstreamMaxRetries) throw outcome.error;
        await sleep(outcome.retryAfter === 'backoff' ? backoffMs(attempt) : outcome.retryAfter, signal);
      }
    } catch (err) {
      // What the upstream said goes to the log: never with the key, which some proxies echo in their errors.
      if (!(err instanceof ProviderError)) throw err;
      const message = withoutSecrets(err.message, this.llm.apiKey);
      throw message === err.message ? err : new ProviderError(err.kind, message, err.httpStatus);
    }
  }

  private params(request: CompletionRequest): ChatCompletionCreateParamsStreaming {
    return {
      model: this.model,
      messages: request.messages,
      stream: true,
      stream_options: { include_usage: true },
      // OpenAI's newer models only take max_completion_tokens; compatible servers know max_tokens.
      ...(this.isOfficial ? { max_completion_tokens: request.maxOutputTokens } : { max_tokens: request.maxOutputTokens }),
    };
  }

  /**
   * One HTTP request. Resolves with undefined when the completion ended with [DONE], else with
   * why it failed; rejects when a chunk is an error or malformed (or `onChunk` throws).
   */
  private async attempt(
    request: CompletionRequest, signal: AbortSignal, onChunk: (chunk: ProviderChunk) => void, { sendWhen, onDone }: StreamHooks,
  ): Promise<Attempt | undefined> {
    const abort = new AbortController();
    const onAbort = (): void => abort.abort(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    let timedOut: 'timeout' | 'idle-timeout' | undefined;
    let isOver = false;
    // Until the first byte of the body; then between chunks (refreshed on each). A held request's
    // clock starts when it is sent: storing its turn is not the model's time to answer.
    let timer: NodeJS.Timeout | undefined;
    const startFirstByteClock = (): void => {
      if (!isOver) timer = setTimeout(() => { timedOut = 'timeout'; abort.abort(); }, this.llm.upstreamTimeoutMs);
    };
    if (sendWhen) void sendWhen.then(startFirstByteClock, () => undefined);
    else startFirstByteClock();
    let body: IncomingMessage | undefined;
    let isDone = false;
    try {
      let response: Response;
      try {
        response = await this.client.chat.completions
          .create(this.params(request), {
            // A held request's wait for its headers is bounded by the clock above, which starts at
            // its send; the SDK's own would start while the turn is stored.
            signal: abort.signal, maxRetries: 0, timeout: sendWhen ? LONGEST_TIMER_MS : this.llm.upstreamTimeoutMs,
            // Passed through to NodeHttpFetch as it is (the SDK spreads fetchOptions into the init).
            ...(sendWhen ? { fetchOptions: gated(sendWhen) } : {}),
          })
          .asResponse();
      } catch (err) {
        return this.beforeResponse(err, timedOut);
      }
      body = this.transport.bodyOf(response);
      if (!body) return { error: new ProviderError('protocol', 'Upstream answered without a body') };
      const type = response.headers.get('content-type')?.split(';')[0].trim().toLowerCase() ?? '';
      const encoding = response.headers.get('content-encoding')?.trim().toLowerCase() ?? '';
      if (encoding !== '' && encoding !== 'identity') {
        // Asked for `identity`: a gateway that compresses anyway sends bytes no parser here reads.
        return { error: new ProviderError('protocol', `Upstream answered with Content-Encoding ${encoding.slice(0, 40)}, though asked for identity: turn compression off in the gateway in front of the model`) };
      }
      if (type === 'application/json') {
        // A server or gateway that ignores `stream: true` answers the whole completion (or an error) as JSON.
        const json = await readWhole(body, MAX_SSE_LINE_CHARS);
        isDone = true;
        this.parseChunk(json, onChunk, 'message', new ReasoningBlock());
        onDone?.();
        return undefined;
      }
      if (type !== '' && type !== 'text/event-stream') {
        return { error: new ProviderError('protocol', `Upstream answered 200 with ${type.slice(0, 60)}, not an event stream: is OPENAI_BASE_URL the API's address (ending in /v1)?`) };
      }
      const reading = body;
      // Chunks are handled as they arrive, in the socket's own callback: no promise or iterator
      // per chunk (at 150 streams of 50 tokens/s those were a tenth of the relay's CPU).
      return await new Promise<Attempt | undefined>((resolve, reject) => {
        const parser = new SseParser();
        const reasoning = new ReasoningBlock();
        let hasToken = false;
        /** A finish reason came: the answer is whole, whether or not `[DONE]` follows (llama.cpp and others end without it). */
        let hasFinished = false;
        let isFirstChunk = true;
        let isSettled = false;
        const settle = (outcome: Attempt | undefined, err?: unknown): void => {
          if (isSettled) return;
          isSettled = true;
          reading.off('data', onData).off('end', onEnd).off('error', onCut).off('close', onCut);
          if (err === undefined) resolve(outcome);
          else reject(err instanceof Error ? err : new ProviderError('protocol', 'Unexpected failure while reading the upstream stream'));
        };
        const stalled = (): Attempt => ({
          error: new ProviderError(timedOut!, timedOut === 'timeout' ? 'No answer from the model in time' : 'The model stopped sending tokens'),
        });
        const emit = (chunk: ProviderChunk): void => {
          if (chunk.type === 'token') hasToken = true;
          else if (chunk.type === 'finish' && !hasFinished) {
            hasFinished = true;
            // Only the usage may still come: a server that neither sends `[DONE]` nor closes is not waited for.
            clearTimeout(timer);
            timer = setTimeout(finishedQuietly, Math.min(this.llm.upstreamIdleTimeoutMs, FINISHED_GRACE_MS));
          }
          onChunk(chunk);
        };
        const finished = (): void => {
          isDone = true;
          settle(undefined);
          onDone?.();
        };
        const finishedQuietly = (): void => {
          finished();
          // The connection is not reused: what else it might send is not read.
          abort.abort();
        };
        const onData = (text: string): void => {
          if (isFirstChunk) {
            isFirstChunk = false;
            clearTimeout(timer);
            timer = setTimeout(() => { timedOut = 'idle-timeout'; abort.abort(); }, this.llm.upstreamIdleTimeoutMs);
          } else {
            timer?.refresh();
          }
          try {
            for (const event of parser.push(text)) {
              if (isSettled) return;
              if (event.data === '[DONE]') {
                finished();
                return;
              }
              // `event: error` (some gateways and vLLM name their error events): whatever its data says.
              if (event.event === 'error') throw new ProviderError('upstream-error', `Upstream error mid-stream: ${errorText(event.data, this.llm.apiKey)}`);
              // An event of an empty `data:` line (a keep-alive some gateways send) carries no chunk.
              if (event.data.trim() === '') continue;
              this.parseChunk(event.data, emit, 'delta', reasoning);
            }
          } catch (err) {
            // A line without end (or an event without end) is not the model's stream: the reply fails as for malformed JSON.
            settle(undefined, err instanceof SseLineTooLongError ? new ProviderError('protocol', err.message) : err);
          }
        };
        const onEnd = (): void => {
          if (hasFinished && !timedOut) { finished(); return; }
          if (timedOut) { settle(stalled()); return; }
          settle(hasToken
            ? { error: new ProviderError('cut', 'The upstream stream ended without [DONE]') }
            : { error: new ProviderError('connection', 'The upstream stream ended before the first token'), retryAfter: 'backoff' });
        };
        // The connection broke (or we aborted it: the caller knows why it aborted).
        const onCut = (): void => {
          if (hasFinished && !timedOut && !signal.aborted) { finished(); return; }
          if (timedOut) { settle(stalled()); return; }
          // Before the first token nothing was said: the answer failed rather than was interrupted, and is tried again.
          settle(hasToken
            ? { error: new ProviderError('cut', 'The upstream connection was cut') }
            : { error: new ProviderError('connection', 'The upstream connection was cut before the first token'), retryAfter: 'backoff' });
        };
        reading.setEncoding('utf8');
        // Errors after we stop listening (the abort below) must not be unhandled.
        reading.on('error', () => undefined);
        reading.on('data', onData).on('end', onEnd).on('error', onCut).on('close', onCut);
      });
    } finally {
      isOver = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      if (isDone && body) {
        // Not destroyed: its last bytes are read so the connection goes back to the keep-alive pool.
        drain(body);
      } else {
        // Releases the connection when we stop early (error, stop or consumer gone).
        abort.abort();
        body?.destroy();
      }
    }
  }

  private beforeResponse(err: unknown, timedOut: 'timeout' | 'idle-timeout' | undefined): Attempt {
    if (timedOut || err instanceof APIConnectionTimeoutError) {
      // Not retried: the user has already waited the whole first-byte timeout.
      return { error: new ProviderError('timeout', 'No answer from the model in time') };
    }
    if (err instanceof APIUserAbortError) return { error: new ProviderError('connection', 'aborted') };
    if (err instanceof APIConnectionError) return { error: new ProviderError('connection', err.message), retryAfter: 'backoff' };
    if (err instanceof APIError) {
      const status: number = typeof err.status === 'number' ? err.status : 0;
      const headers: Headers | undefined = err.headers instanceof Headers ? err.headers : undefined;
      const location = status >= 300 && status < 400 ? headers?.get('location') : null;
      // Not followed: a redirect of a POST could carry the API key to another host. The operator sets the final address.
      // The error's own code and type too, when the server gives them (OpenAI's `context_length_exceeded`, llama.cpp's
      // `exceed_context_size_error`): refusalOf reads them.
      const kinds = [err.code, err.type].filter((v): v is string => typeof v === 'string' && v !== '').map((v) => v.slice(0, 64));
      const said = location
        ? `redirected to ${location.slice(0, 200)}; set OPENAI_BASE_URL to the address it names`
        : `${err.message}${kinds.length > 0 ? ` (${kinds.join(', ')})` : ''}`;
      const error = new ProviderError('http', `Upstream answered ${status}: ${said}`, status);
      const isRetryable = (status === 429 && !isOutOfQuota(status, said)) || status === 408 || status >= 500;
      if (!isRetryable) return { error };
      const after = retryAfterMs(headers);
      if (after !== undefined && after > MAX_RETRY_AFTER_MS) return { error };
      return { error, retryAfter: after ?? 'backoff' };
    }
    return { error: new ProviderError('connection', err instanceof Error ? err.message : 'Upstream request failed'), retryAfter: 'backoff' };
  }

  /** One chunk of a stream (`delta`), or a whole completion answered as JSON (`message`). */
  private parseChunk(data: string, emit: (chunk: ProviderChunk) => void, part: 'delta' | 'message', reasoning: ReasoningBlock): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      throw new ProviderError('protocol', 'Malformed JSON in the upstream stream');
    }
    if (typeof parsed !== 'object' || parsed === null) throw new ProviderError('protocol', 'Unexpected upstream chunk');
    // OpenAI's `{"error": {...}}`, a bare `{"error": "..."}`, and vLLM's older `{"object": "error", "message": ...}`.
    if (('error' in parsed && parsed.error) || ('object' in parsed && parsed.object === 'error')) {
      throw new ProviderError('upstream-error', `Upstream error mid-stream: ${errorText(data, this.llm.apiKey)}`);
    }
    const chunk = parsed as Partial<ChatCompletionChunk>;
    type Part = { content?: unknown; reasoning_content?: unknown; reasoning?: unknown };
    // A chunk's one choice is the answer's, whatever its `index` (TGI ≤ 1.4.3 and Foundry Local count it up per
    // chunk); of several in one chunk (a server answering n > 1, which Parley never asks for), the first (`index` 0, or
    // none said): the others' words would be woven into this answer.
    const choices: unknown[] = Array.isArray(chunk.choices) ? chunk.choices : [];
    const choice = (choices.length <= 1 ? choices[0]
      : choices.find((c) => { const index = (c as { index?: unknown } | null)?.index; return index === 0 || index === undefined; })) as
      { delta?: Part; message?: Part; finish_reason?: unknown } | undefined;
    if (part === 'message' && typeof choice?.message !== 'object') throw new ProviderError('protocol', 'Upstream answered JSON that is not a chat completion');
    const text = reasoning.text(reasoningOf(choice?.[part]), textOf(choice?.[part]?.content));
    if (text.length > 0) emit({ type: 'token', text });
    // The reply's metadata is stored as sent, so it is taken only in the form the wire format gives it: a
    // finish reason that is not a short word (an object, 500 characters) or a usage that is not a token count
    // (1.5, "abc", 3e9) is left out, as if not sent; the reply itself does not fail for it.
    const reason: unknown = choice?.finish_reason;
    if (typeof reason === 'string' && FINISH_REASON.test(reason)) {
      const closing = reasoning.end();
      if (closing) emit({ type: 'token', text: closing });
      emit({ type: 'finish', reason });
    }
    const usage = chunk.usage as { prompt_tokens?: unknown; completion_tokens?: unknown } | null | undefined;
    if (usage && isTokenCount(usage.prompt_tokens) && isTokenCount(usage.completion_tokens)) {
      emit({ type: 'usage', promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens });
    }
  }
}

/**
 * A message's text: a string, or (as some servers send) an array of content parts, whose text parts are joined;
 * anything else (null, a tool call's absent content) is no text.
 */
function textOf(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  let text = '';
  for (const part of content as unknown[]) {
    const value = (part as { text?: unknown } | null)?.text;
    if (typeof value === 'string') text += value;
  }
  return text;
}

/**
 * An upstream's words without the API key or anything shaped like a credential (`Bearer …`, `sk-…`): some
 * OpenAI-compatible proxies echo the Authorization header they were sent in a 401's body or an error event.
 */
export function withoutSecrets(text: string, apiKey: string | undefined): string {
  const keyless = apiKey && apiKey.length >= 8 ? text.split(apiKey).join('[redacted]') : text;
  return keyless.replace(/\b(Bearer\s+)[^\s"',;]+/gi, '$1[redacted]').replace(/\bsk-[A-Za-z0-9_-]{8,}/g, '[redacted]');
}

/** What an upstream error says, for the log (never the client): its message in whichever shape, without secrets, cut to 300 characters. */
function errorText(data: string, apiKey: string | undefined): string {
  let said: unknown = data;
  try {
    const parsed = JSON.parse(data) as { error?: unknown; message?: unknown } | null;
    const error = parsed?.error as { message?: unknown } | string | undefined;
    said = typeof error === 'string' ? error : error?.message ?? parsed?.message ?? data;
  } catch {
    // Not JSON: the data as sent.
  }
  // Secrets out before the cut: a key cut in two at its end no longer matched.
  return withoutSecrets(typeof said === 'string' ? said : JSON.stringify(said), apiKey).slice(0, 300) || 'unknown';
}

/** A finish reason as OpenAI-compatible servers send them (`stop`, `length`, `content_filter`, `end_turn`, …). */
const FINISH_REASON = /^[A-Za-z0-9_.:-]{1,32}$/;

/** A count of tokens that fits the database's integer column. */
function isTokenCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0 && value <= 2_147_483_647;
}

/** The SDK's per-request options (its RequestOptions type is not exported from the package root). */
type RequestOptions = NonNullable<Parameters<OpenAI['chat']['completions']['create']>[1]>;

/** The fetch options that hold a request until `sendWhen` (NodeHttpFetch). */
function gated(sendWhen: Promise<void>): RequestOptions['fetchOptions'] {
  const init: GatedRequestInit = { [SEND_WHEN]: sendWhen };
  // The SDK types fetchOptions as the RequestInit of whichever fetch it may be given; ours is NodeHttpFetch's.
  return init as RequestOptions['fetchOptions'];
}

/**
 * Reads what is left of a finished body (the chunked terminator, or only its end) so that the
 * body ends and its connection goes back to the pool; gives up after a second. Even a body
 * received whole must be read to its end: the connection is released on 'end', not before.
 */
function drain(body: IncomingMessage): void {
  if (body.readableEnded || body.destroyed) return;
  const timer = setTimeout(() => body.destroy(), 1000);
  body.once('close', () => clearTimeout(timer));
  body.on('error', () => undefined);
  body.resume();
}

/** A body read whole as text (a completion answered as JSON); a protocol failure past `maxChars`. */
function readWhole(body: IncomingMessage, maxChars: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    body.setEncoding('utf8');
    body.on('data', (piece: string) => {
      text += piece;
      if (text.length > maxChars) {
        body.destroy();
        reject(new ProviderError('protocol', `Upstream answered more than ${maxChars} characters of JSON`));
      }
    });
    body.once('end', () => resolve(text));
    body.once('error', () => reject(new ProviderError('cut', 'The upstream connection was cut')));
    body.once('close', () => { if (!body.readableEnded) reject(new ProviderError('cut', 'The upstream connection was cut')); });
  });
}

/** Exponential backoff with jitter for a retry without Retry-After. */
export function backoffMs(attempt: number): number {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** attempt);
  return Math.round(base / 2 + Math.random() * (base / 2));
}
