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
 * vLLM, Ollama or llama.cpp), its content filter blocked it (Azure OpenAI), or any other refusal (a wrong
 * key or model name, a redirect, a 422, a MAX_OUTPUT_TOKENS the model cannot give at all).
 * Stored as the failed answer's `finish_reason`; the user is told which.
 */
export const UPSTREAM_REFUSALS = ['context_length_exceeded', 'content_filter', 'upstream_refused'] as const;
export type UpstreamRefusal = (typeof UPSTREAM_REFUSALS)[number];

/**
 * What servers say of a prompt over the context: OpenAI and its `context_length_exceeded` code, vLLM ("maximum
 * model length"), SGLang, llama.cpp (`exceed_context_size_error`, "exceeds the available context size", "larger
 * than the max context size"), llama-cpp-python ("exceed context window"), Ollama, LM Studio, Gemini ("exceeds the
 * maximum number of tokens allowed"), Anthropic-compatible gateways ("prompt is too long"), TGI ("`inputs` tokens +
 * `max_new_tokens` must be <=", "`inputs` must have less than"), xAI ("maximum prompt length"), LiteLLM
 * (ContextWindowExceededError). Not "context window" alone: a model's description may say it.
 */
const CONTEXT_LENGTH_WORDS = new RegExp([
  /context[_ ]length/, /maximum context/, /context_?window_?exceeded/, /exceed_context_size/,
  /exceeds? (?:the |its )?(?:available |maximum )?context[_ ](?:window|size)/, /larger than the max(?:imum)? context/,
  /maximum model length/, /maximum prompt length/, /\bn_ctx\b/, /too many (?:input )?tokens/, /(?:input|prompt)[^.]{0,30}? too long/,
  /exceeds? (?:the )?(?:model'?s? )?(?:maximum|max) (?:context|input|(?:number of )?tokens)/,
  /`?inputs`? tokens \+ `?max_new_tokens`?/, /`?inputs`? must have less than \d+ tokens/,
].map((r) => r.source).join('|'), 'i');

/**
 * A throttle's words ("Too many tokens, please wait", Bedrock through LiteLLM, in a 4xx or mid-stream): a limit
 * that passes, never a refusal, whatever else the message says.
 */
const THROTTLE_WORDS = /rate[_ ]?limit|throttl|please wait|per minute|try again (?:later|in)/i;

/**
 * Out of credit, which a 429 says on OpenAI by its code or type (`insufficient_quota`) and on some gateways: not a
 * rate limit that passes, so neither retried nor told to try again in a moment; the operator must add credit. Not
 * OpenAI's words ("You exceeded your current quota, please check your plan and billing details"): Gemini says the
 * same of its per-minute limit ("… Please retry in 17.3s").
 */
const OUT_OF_QUOTA_WORDS = /\binsufficient_quota\b|insufficient (?:credits?|balance)|credit balance is too low/i;

/** A 429 that is out of credit rather than throttled (OUT_OF_QUOTA_WORDS): trying again cannot help. */
export function isOutOfQuota(status: number | undefined, message: string): boolean {
  return status === 429 && OUT_OF_QUOTA_WORDS.test(message);
}

/**
 * Content filters: Azure OpenAI's (`content_filter`, "content management policy", ResponsibleAIPolicyViolation),
 * DeepSeek's ("Content Exists Risk"), OpenRouter's moderation ("… flagged for …").
 */
const CONTENT_FILTER_WORDS = /content[_ ]filter|content management policy|ResponsibleAIPolicyViolation|Content Exists Risk|flagged (?:for|by)|requires? moderation/i;

/**
 * "The completion alone does not fit": MAX_OUTPUT_TOKENS is set over the model's real context, which no shorter
 * prompt can help. vLLM: "'max_tokens' … is too large: 8192. This model's maximum context length is 4096 tokens",
 * "… 4096 tokens. However, you requested 8192 output tokens and your prompt contains …", or "… you requested 8212
 * tokens (20 in the messages, 8192 in the completion)"; SGLang: "… maximum context length of 4096 tokens. You
 * requested … 8192 tokens for the completion"; TGI: "… must be <= 4096. Given: 20 `inputs` tokens and 8192 `max_new_tokens`".
 */
function isOutputOverContext(message: string): boolean {
  const context = /maximum context length (?:is|of) (\d+)/i.exec(message) ?? /max_new_tokens`? must be <= (\d+)/i.exec(message);
  const output = /too large: (\d+)/i.exec(message) ?? /requested (\d+) output tokens/i.exec(message)
    ?? /(\d+) (?:in the completion|tokens for the completion)/i.exec(message) ?? /and (\d+) `?max_new_tokens/i.exec(message);
  return context !== null && output !== null && Number(output[1]) >= Number(context[1]);
}

/**
 * The refusal an error is, if any: an HTTP answer 3xx/4xx but 408/429 (a 429 out of credit is one), or an error the server sent in the
 * middle of a stream that says the prompt is over the context or filtered (SGLang, older llama.cpp and vLLM
 * send those after a 200). Any other error mid-stream may pass, and so may a throttle: no refusal.
 */
export function refusalOf(err: ProviderError): UpstreamRefusal | undefined {
  const status = err.httpStatus;
  if (err.kind === 'http' && isOutOfQuota(status, err.message)) return 'upstream_refused';
  const isHttpRefusal = err.kind === 'http' && status !== undefined && status >= 300 && status < 500 && status !== 408 && status !== 429;
  if (!isHttpRefusal && err.kind !== 'upstream-error') return undefined;
  if (THROTTLE_WORDS.test(err.message)) return undefined;
  if (CONTENT_FILTER_WORDS.test(err.message)) return 'content_filter';
  if (isOutputOverContext(err.message)) return isHttpRefusal ? 'upstream_refused' : undefined;
  if (status === 413 || CONTEXT_LENGTH_WORDS.test(err.message)) return 'context_length_exceeded';
  return isHttpRefusal ? 'upstream_refused' : undefined;
}

/** The refusals the same question gets again, whoever runs the model: left out of later prompts (history-context.ts). */
export const REFUSED_FOR_ITS_WORDS: readonly UpstreamRefusal[] = ['context_length_exceeded', 'content_filter'];

/** The model's server refused this request for its words (REFUSED_FOR_ITS_WORDS): it is up, and the prompt is the cause. */
export function isRefusedForItsWords(err: ProviderError): boolean {
  const refusal = refusalOf(err);
  return refusal !== undefined && REFUSED_FOR_ITS_WORDS.includes(refusal);
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
