import type { Message } from '../core/api-models';
import { randomId } from '../core/random-id';

/** A message as the view shows it: the API's, plus what only this tab knows. */
export interface ChatMessage extends Message {
  /** The friendly reason an answer failed, shown with Retry. */
  errorText?: string;
  /**
   * The answer failed while this tab followed it: its notice is news, announced at once (an alert). A failure read
   * from history (a conversation opened, an older page) is not: every old one was read out again.
   */
  hasFailedLive?: boolean;
  /**
   * The answer was restated from the server's copy after the connection was lost, and that copy ends before the text
   * this tab had shown: the words of its last moments were never saved (the server saves as it goes, every 250 ms).
   */
  hasLostText?: boolean;
}

/** A message made in this tab before the server gave it an id. */
export function emptyMessage(role: Message['role'], conversationId: string, position: number): ChatMessage {
  const now = new Date().toISOString();
  return {
    id: `local-${role}-${randomId()}`, conversation_id: conversationId, position, role, content: '',
    status: role === 'assistant' ? 'streaming' : 'complete', created_at: now, updated_at: now, token_count: null,
    model_name: null, finish_reason: null, error_code: null, feedback: null, feedback_comment: null, files: [],
  };
}

/**
 * The list without the answers a regeneration replaces: once it completes the server deletes every
 * earlier answer to the question, those of regenerations stopped before it included, so they go
 * from view as it starts, not only the one it names.
 */
export function withoutReplaced(list: ChatMessage[], replacesId: string | undefined, keepId: string | null): ChatMessage[] {
  if (!replacesId) return list;
  const replaced = list.findIndex((m) => m.id === replacesId);
  if (replaced === -1) return list;
  let question = replaced;
  while (question >= 0 && list[question].role !== 'user') question--;
  return list.filter((m, i) => m.id === keepId || m.role !== 'assistant' || i <= question || i > replaced);
}

/**
 * The list without the other answers to the question `answerId` answers. An answer that completes
 * leaves it the only one (the server deletes the earlier ones once a regeneration completes); a
 * regeneration followed after a reload or a switch back (its `start`, naming what it replaces, not
 * replayed) left them behind "Show the earlier answer", gone from the server.
 */
export function withoutEarlierAnswers(list: ChatMessage[], answerId: string): ChatMessage[] {
  const at = list.findIndex((m) => m.id === answerId);
  if (at === -1) return list;
  let question = at - 1;
  while (question >= 0 && list[question].role === 'assistant') question--;
  if (question === at - 1) return list;
  return list.filter((_m, i) => i <= question || i >= at);
}
