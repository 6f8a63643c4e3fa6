import type { MessageStatus } from '../core/api-models';

/**
 * The words of a failed answer's notice, by its stored error code: the same as the server's error event says live
 * (server/src/chat/fallback-texts.ts, which this mirrors), so an answer that failed reads the same after a reload.
 * A reload has only the code; before, it read "The model could not answer." whatever the failure was.
 */
const GENERIC = 'Something went wrong. Please try again or start a new conversation.';
const INTERRUPTED = 'This answer was interrupted before it finished.';
const OPENAI_UNAVAILABLE = 'I\'m temporarily unable to process your request. Please try again in a moment.';
const FILE_PROCESSING = 'I couldn\'t process the uploaded file. Please try a different format.';

const TEXT_FOR_CODE: Partial<Record<string, string>> = {
  OPENAI_ERROR: OPENAI_UNAVAILABLE,
  SERVICE_UNAVAILABLE: OPENAI_UNAVAILABLE,
  RATE_LIMIT_EXCEEDED: 'You\'ve sent too many messages. Please wait a bit before sending more.',
  FILE_PROCESSING_ERROR: FILE_PROCESSING,
  FILE_NOT_FOUND: FILE_PROCESSING,
  CONVERSATION_NOT_FOUND: 'This conversation was deleted, so the answer was not kept.',
};

/** The notice of a failed or interrupted answer: an interrupted one says so, whatever its code, as the server's does. */
export function failureText(code: string | null, status: MessageStatus): string {
  if (status === 'interrupted') return INTERRUPTED;
  return (code === null ? undefined : TEXT_FOR_CODE[code]) ?? GENERIC;
}
