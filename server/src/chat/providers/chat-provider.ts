import type { LlmProviderName } from '../../config/app-config.js';

export const CHAT_PROVIDER = Symbol('CHAT_PROVIDER');

export interface ProviderMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

export interface CompletionRequest {
  messages: ProviderMessage[];
  maxOutputTokens: number;
  /** Names of the files attached to the last user turn (their text is already inside it). */
  fileNames: string[];
}

export type ProviderChunk =
  | { type: 'token'; text: string }
  | { type: 'finish'; reason: string }
  | { type: 'usage'; promptTokens: number; completionTokens: number };

/**
 * Why a completion ended badly, and so how the message row ends: `failed` when nothing
 * trustworthy came (HTTP error, timeout, malformed or error payload), `interrupted` when
 * the upstream cut a reply that had started (connection dropped, no `[DONE]`).
 */
export type ProviderFailureKind = 'http' | 'timeout' | 'idle-timeout' | 'connection' | 'protocol' | 'upstream-error' | 'cut';

/**
 * Why the model's server refused a request outright, so that trying it again cannot help (unlike an outage):
 * the prompt is over the model's context (its tokenizer may count more than ours: a Llama or Mistral behind
 * vLLM, Ollama or llama.cpp), or any other refusal (a wrong key or model name, a redirect, a 422).
 * Stored as the failed answer's `finish_reason`; the user is told which.
 */
export type UpstreamRefusal = 'context_length_exceeded' | 'upstream_refused';

/** What the OpenAI, vLLM, llama.cpp, Ollama and LM Studio servers say of a prompt over the context. */
const CONTEXT_LENGTH_WORDS = /context[_ ](?:length|window|size|limit)|maximum context|n_ctx|too many (?:input )?tokens|(?:input|prompt)[^.]{0,30}? too long|exceeds? (?:the )?(?:model'?s? )?(?:maximum|max|available) (?:context|tokens|input)/i;

export function refusalOf(err: ProviderError): UpstreamRefusal | undefined {
  const status = err.httpStatus;
  if (err.kind !== 'http' || status === undefined || status < 300 || status >= 500 || status === 408 || status === 429) return undefined;
  return status === 413 || CONTEXT_LENGTH_WORDS.test(err.message) ? 'context_length_exceeded' : 'upstream_refused';
}

export class ProviderError extends Error {
  constructor(readonly kind: ProviderFailureKind, message: string, readonly httpStatus?: number) {
    super(message);
    this.name = 'ProviderError';
  }

  get messageStatus(): 'failed' | 'interrupted' {
    return this.kind === 'cut' ? 'interrupted' : 'failed';
  }
}

/**
 * A completion whose request a provider began to build ahead of its send (ChatProvider.prepare).
 * Nothing of it reaches the model until it is handed to `stream`; `cancel` drops it.
 */
export interface PreparedCompletion {
  cancel(): void;
}

/** One small class per model backend; selected by config (llm.provider). */
export interface ChatProvider {
  readonly name: LlmProviderName;
  readonly model: string;
  /** A demo without a real model (shown in the SPA). */
  readonly isDemo: boolean;
  /**
   * Streams one completion, handing each chunk to `onChunk` as it arrives (synchronously, in
   * order). Resolves only after the upstream said it was done; otherwise rejects with a
   * ProviderError. When `signal` aborts, it stops promptly and rejects (the caller knows why
   * it aborted). With `prepared` (from `prepare`, for this same request), the request built
   * ahead is the one sent, now.
   */
  stream(request: CompletionRequest, signal: AbortSignal, onChunk: (chunk: ProviderChunk) => void, prepared?: PreparedCompletion): Promise<void>;
  /**
   * Optional: begins building the completion's request where that can run beside the caller
   * (the upstream worker's thread), while the caller does what must come before the model is
   * called (storing the user's message). Sends nothing: only `stream` does.
   */
  prepare?(request: CompletionRequest): PreparedCompletion;
}
