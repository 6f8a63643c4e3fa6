import { ErrorCode } from '../common/error-code.js';

/** The friendly texts of design document 13.2. They are sent in error events, never stored as an answer. */
export const FALLBACK_TEXTS = {
  openaiUnavailable: 'I\'m temporarily unable to process your request. Please try again in a moment.',
  rateLimit: 'You\'ve sent too many messages. Please wait a bit before sending more.',
  fileProcessing: 'I couldn\'t process the uploaded file. Please try a different format.',
  databaseError: 'I\'m having trouble accessing conversation history right now.',
  generic: 'Something went wrong. Please try again or start a new conversation.',
  /** An answer whose conversation was deleted while it was written: nothing was kept. */
  conversationDeleted: 'This conversation was deleted, so the answer was not kept.',
  /** A reply cut by a restart or a lost instance: the same words the SPA shows for a stored `interrupted` answer. */
  interrupted: 'This answer was interrupted before it finished.',
  /** The model's server said the prompt is over its context (UpstreamRefusal): trying again sends the same. */
  contextLengthExceeded: 'This is more than the model can read at once. Send a shorter message or smaller files; in a long conversation, starting a new one also helps.',
  /** The model service's content filter blocked the request (Azure OpenAI): the same words would be blocked again. */
  contentFilter: 'The model service\'s content filter blocked this request. Please rephrase your message.',
  /** Any other outright refusal of the model's server (a wrong key or model name): not a passing outage. */
  upstreamRefused: 'The model service refused this request; this is not a passing outage. If it keeps happening, please tell whoever runs this Parley.',
} as const;

const TEXT_FOR_REFUSAL: Partial<Record<string, string>> = {
  context_length_exceeded: FALLBACK_TEXTS.contextLengthExceeded,
  content_filter: FALLBACK_TEXTS.contentFilter,
  upstream_refused: FALLBACK_TEXTS.upstreamRefused,
};

const TEXT_FOR_CODE: Partial<Record<string, string>> = {
  [ErrorCode.OpenAiError]: FALLBACK_TEXTS.openaiUnavailable,
  [ErrorCode.ServiceUnavailable]: FALLBACK_TEXTS.openaiUnavailable,
  [ErrorCode.RateLimitExceeded]: FALLBACK_TEXTS.rateLimit,
  [ErrorCode.FileProcessingError]: FALLBACK_TEXTS.fileProcessing,
  [ErrorCode.FileNotFound]: FALLBACK_TEXTS.fileProcessing,
  [ErrorCode.ConversationNotFound]: FALLBACK_TEXTS.conversationDeleted,
};

/**
 * The friendly text of an error event (also when rebuilt from a stored row): an interrupted reply says so,
 * whatever its code (live it said "temporarily unable to process", after a reload "interrupted").
 */
export function fallbackTextFor(code: string | null, status: 'failed' | 'interrupted' = 'failed', finishReason: string | null = null): string {
  if (status === 'interrupted') return FALLBACK_TEXTS.interrupted;
  // A model's refusal (its finish reason) says more than "temporarily unable", which invites a retry that fails the same.
  if (code === ErrorCode.OpenAiError && finishReason !== null && TEXT_FOR_REFUSAL[finishReason]) return TEXT_FOR_REFUSAL[finishReason];
  return (code === null ? undefined : TEXT_FOR_CODE[code]) ?? FALLBACK_TEXTS.generic;
}

/** The error event's fields for a failed answer: its friendly text, and its finish reason when it has one (a refusal). */
export function failureFields(code: string | null, status: 'failed' | 'interrupted', finishReason: string | null): { error: string; finish_reason?: string } {
  const isRefusal = status === 'failed' && code === ErrorCode.OpenAiError && finishReason !== null && TEXT_FOR_REFUSAL[finishReason] !== undefined;
  return { error: fallbackTextFor(code, status, finishReason), ...(isRefusal ? { finish_reason: finishReason } : {}) };
}
