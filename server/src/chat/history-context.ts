import type { HistoryMessage } from '../conversations/conversations.service.js';
import { UPSTREAM_REFUSALS } from './providers/chat-provider.js';
import { withoutThinking } from './think-block.js';

/**
 * The earlier messages of a conversation that a new prompt carries, oldest first:
 * - every question, and the answer the conversation shows for it when that answer says something
 *   (complete, stopped, or cut with text); never a failed or still-streaming one;
 * - an answer's text without a reasoning model's thinking before it (think-block.ts);
 * - of two answers in a row to one question (a regeneration stopped or cut before it replaced the
 *   first), only the later one, the one the conversation shows;
 * - not a question the model's server refused outright and that has no answer (over its context,
 *   blocked by its content filter, or refused otherwise): sent again with every later question it
 *   would have them refused the same way, the conversation stuck for good.
 */
export function historyContext<M extends HistoryMessage>(stored: M[]): M[] {
  const messages = stored.map((m) => (m.role === 'assistant' ? { ...m, content: withoutThinking(m.content) } : m));
  const refused = refusedQuestions(messages);
  const answered = messages.filter((m) => (m.role === 'user' && !refused.has(m.id))
    || (m.role === 'assistant' && m.content.length > 0 && m.status !== 'failed' && m.status !== 'streaming'));
  return answered.filter((m, i) => !(m.role === 'assistant' && answered[i + 1]?.role === 'assistant'));
}

/** Questions whose answers, all of them, failed with a refusal, the last one included. */
function refusedQuestions(messages: HistoryMessage[]): Set<string> {
  const refused = new Set<string>();
  messages.forEach((m, i) => {
    if (m.role !== 'user') return;
    const next = messages.findIndex((n, j) => j > i && n.role === 'user');
    const answers = messages.slice(i + 1, next === -1 ? undefined : next);
    const isRefusal = (a: HistoryMessage): boolean => a.status === 'failed' && (UPSTREAM_REFUSALS as readonly (string | null)[]).includes(a.finishReason);
    if (answers.length > 0 && answers.every(isRefusal)) refused.add(m.id);
  });
  return refused;
}
