import type { HistoryMessage } from '../conversations/conversations.service.js';
import { REFUSED_FOR_ITS_WORDS } from './providers/chat-provider.js';
import { withoutThinking } from '../conversations/think-block.js';

/**
 * The earlier messages of a conversation that a new prompt carries, oldest first:
 * - every question, and the answer the conversation shows for it when that answer says something
 *   (complete, stopped, or cut with text); never a failed or still-streaming one;
 * - an answer's text without a reasoning model's thinking before it (conversations/think-block.ts);
 * - of two answers in a row to one question (a regeneration stopped or cut before it replaced the
 *   first), only the later one, the one the conversation shows;
 * - not a question with no answer that the model's server last refused for its words (over its
 *   context, or blocked by its content filter): sent again with every later question it would have
 *   them refused the same way, the conversation stuck for good. A refusal for anything else (a wrong
 *   key or model name) refuses every question alike: once the operator fixes it, the question counts.
 */
export function historyContext<M extends HistoryMessage>(stored: M[]): M[] {
  const messages = stored.map((m) => (m.role === 'assistant' ? { ...m, content: withoutThinking(m.content) } : m));
  const refused = refusedQuestions(messages);
  const answered = messages.filter((m) => (m.role === 'user' && !refused.has(m.id)) || (m.role === 'assistant' && isUsable(m)));
  return answered.filter((m, i) => !(m.role === 'assistant' && answered[i + 1]?.role === 'assistant'));
}

/** An answer that says something: complete, stopped, or cut with text; never a failed or still-streaming one. */
function isUsable(m: HistoryMessage): boolean {
  return m.content.length > 0 && m.status !== 'failed' && m.status !== 'streaming';
}

/** Questions with no usable answer whose last answer was refused for its words (an earlier try may have been stopped or cut). */
function refusedQuestions(messages: HistoryMessage[]): Set<string> {
  const refused = new Set<string>();
  let question: HistoryMessage | undefined;
  let isAnswered = false;
  let last: HistoryMessage | undefined;
  const close = (): void => {
    const isRefused = last?.status === 'failed' && (REFUSED_FOR_ITS_WORDS as readonly (string | null)[]).includes(last.finishReason);
    if (question && isRefused && !isAnswered) refused.add(question.id);
  };
  for (const m of messages) {
    if (m.role === 'user') {
      close();
      question = m;
      isAnswered = false;
      last = undefined;
    } else {
      isAnswered ||= isUsable(m);
      last = m;
    }
  }
  close();
  return refused;
}
