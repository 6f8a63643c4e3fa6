import type { ContextNotice, Message } from '../core/api-models';

/**
 * The note under an answer that completed but is not the whole answer, or has no words at all, by the model's
 * finish reason; null for an answer that needs none. The same words live (the `done` event's reason) and from
 * history (the stored row's): a reasoning model that spent its output limit thinking, or an answer the provider
 * filtered, otherwise showed as an empty bubble, and a truncated answer read as a finished one.
 */
export function answerNotice(message: Pick<Message, 'status' | 'content' | 'finish_reason'>): string | null {
  if (message.status !== 'complete') return null;
  // A reply of only spaces or new lines shows nothing either.
  if (message.content.trim() === '') {
    if (message.finish_reason === 'length') return 'The model returned no text before the answer reached its length limit.';
    if (message.finish_reason === 'content_filter') return 'The model\'s provider withheld this answer (content filter).';
    return 'The model returned no text.';
  }
  if (message.finish_reason === 'length') return 'The answer was cut off at its length limit.';
  if (message.finish_reason === 'content_filter') return 'The rest of this answer was withheld by the model\'s provider (content filter).';
  return null;
}

const names = new Intl.ListFormat('en', { style: 'long', type: 'conjunction' });

/**
 * The note over an answer whose question's files did not all fit in the model's context: an answer about a file's
 * end, or about a file left out, is about text the model never saw; and over one whose model no longer saw the
 * conversation's start (it seemed to forget what was said there). Null when it saw them all. `name` writes a file's
 * name (the Markdown export: as code, so that a name cannot be Markdown). Without `withEarlierMessages` the
 * conversation's start is not mentioned (the SPA says it over the latest answer only: once a conversation outgrows
 * the context every later answer has it, and the same sentence over each of them was noise).
 */
export function contextNoticeText(
  context: ContextNotice | null | undefined, name: (filename: string) => string = (n) => n, withEarlierMessages = true,
): string | null {
  const cut = (context?.truncated_files ?? []).map(name);
  const left = (context?.omitted_files ?? []).map(name);
  const parts: string[] = [];
  if (cut.length > 0) {
    parts.push(`Only the beginning of ${names.format(cut)} fit in the model's context: it did not see the rest${cut.length > 1 ? ' of them' : ''}.`);
  }
  if (left.length > 0) {
    parts.push(`${names.format(left)} did not fit in the model's context: it did not see ${left.length > 1 ? 'them' : 'it'}.`);
  }
  const earlier = withEarlierMessages ? context?.earlier_messages_omitted ?? 0 : 0;
  if (earlier > 0) {
    const which = earlier === 1 ? 'the first message' : `the first ${earlier} messages`;
    parts.push(`The model did not see ${which} of this conversation: ${earlier === 1 ? 'it no longer fits' : 'they no longer fit'} in its context.`);
  }
  return parts.length > 0 ? parts.join(' ') : null;
}
