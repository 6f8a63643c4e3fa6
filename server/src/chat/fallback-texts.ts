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
} as const;

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
export function fallbackTextFor(code: string | null, status: 'failed' | 'interrupted' = 'failed'): string {
  if (status === 'interrupted') return FALLBACK_TEXTS.interrupted;
  return (code === null ? undefined : TEXT_FOR_CODE[code]) ?? FALLBACK_TEXTS.generic;
}
