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

/** The model's server refused the request outright (the stored finish reason): trying again cannot help. */
const TEXT_FOR_REFUSAL: Partial<Record<string, string>> = {
  context_length_exceeded: 'This is more than the model can read at once. Send a shorter message or smaller files; in a long conversation, starting a new one also helps.',
  content_filter: 'The model service\'s content filter blocked this request. Please rephrase your message.',
  upstream_refused: 'The model service refused this request; this is not a passing outage. If it keeps happening, please tell whoever runs this Parley.',
};

/**
 * The notice of a failed or interrupted answer: an interrupted one says so, whatever its code, as the server's does;
 * a model's refusal by its finish reason.
 */
export function failureText(code: string | null, status: MessageStatus, finishReason: string | null = null): string {
  if (status === 'interrupted') return INTERRUPTED;
  const refusal = code === 'OPENAI_ERROR' && finishReason !== null ? TEXT_FOR_REFUSAL[finishReason] : undefined;
  return refusal ?? (code === null ? undefined : TEXT_FOR_CODE[code]) ?? GENERIC;
}

/** A refusal that the same question, sent again, gets again: over the model's context, or blocked by its content filter. */
export function isRefusedForItsWords(finishReason: string | null | undefined): boolean {
  return finishReason === 'context_length_exceeded' || finishReason === 'content_filter';
}
