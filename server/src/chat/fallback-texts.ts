import { ErrorCode } from '../common/error-code.js';

/** The friendly texts of design document 13.2. They are sent in error events, never stored as an answer. */
export const FALLBACK_TEXTS = {
  openaiUnavailable: 'I\'m temporarily unable to process your request. Please try again in a moment.',
  rateLimit: 'You\'ve sent too many messages. Please wait a bit before sending more.',
  fileProcessing: 'I couldn\'t process the uploaded file. Please try a different format.',
  databaseError: 'I\'m having trouble accessing conversation history right now.',
  generic: 'Something went wrong. Please try again or start a new conversation.',
} as const;

/** The friendly text for an error code carried by an error event (also when rebuilt from a stored row). */
export function fallbackTextFor(code: string | null): string {
  switch (code) {
    case ErrorCode.OpenAiError:
    case ErrorCode.ServiceUnavailable:
      return FALLBACK_TEXTS.openaiUnavailable;
    case ErrorCode.RateLimitExceeded:
      return FALLBACK_TEXTS.rateLimit;
    case ErrorCode.FileProcessingError:
    case ErrorCode.FileNotFound:
      return FALLBACK_TEXTS.fileProcessing;
    default:
      return FALLBACK_TEXTS.generic;
  }
}
