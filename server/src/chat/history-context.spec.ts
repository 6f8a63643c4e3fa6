import type { HistoryMessage } from '../conversations/conversations.service.js';
import { historyContext } from './history-context.js';

let n = 0;
const user = (content: string): HistoryMessage => ({ id: `u${n++}`, role: 'user', content, status: 'complete', tokenCount: null, finishReason: null, position: n });
const answer = (content: string, status: HistoryMessage['status'] = 'complete', finishReason: string | null = 'stop'): HistoryMessage =>
  ({ id: `a${n++}`, role: 'assistant', content, status, tokenCount: null, finishReason, position: n });
const texts = (messages: HistoryMessage[]): string[] => historyContext(messages).map((m) => `${m.role}: ${m.content}`);

describe('the history a new prompt carries', () => {
  it('leaves out a question the model\'s server refused for its words and that has no answer, so the next question is not refused with it', () => {
    for (const reason of ['context_length_exceeded', 'content_filter']) {
      expect(texts([user('hi'), answer('hello'), user('a question over the context'), answer('', 'failed', reason)]), reason)
        .toEqual(['user: hi', 'assistant: hello']);
    }
    // A regeneration refused too, or an earlier try stopped before a word, cut empty, or failed by an outage: still no answer.
    expect(texts([user('big'), answer('', 'failed', 'context_length_exceeded'), answer('', 'failed', 'context_length_exceeded')])).toEqual([]);
    expect(texts([user('big'), answer('', 'stopped', 'stop_requested'), answer('', 'failed', 'context_length_exceeded')])).toEqual([]);
    expect(texts([user('big'), answer('', 'interrupted', null), answer('', 'failed', null), answer('', 'failed', 'content_filter')])).toEqual([]);
  });

  it('keeps a question whose failure may pass (an outage, a wrong key), and one answered before a later refusal (a regeneration refused)', () => {
    expect(texts([user('q1'), answer('', 'failed', null), user('q2')])).toEqual(['user: q1', 'user: q2']);
    // A wrong key or model name refuses every question alike: fixed by the operator, the question is context again.
    expect(texts([user('q1'), answer('', 'failed', 'upstream_refused'), user('q2')])).toEqual(['user: q1', 'user: q2']);
    expect(texts([user('q1'), answer('partial', 'interrupted', null)])).toEqual(['user: q1', 'assistant: partial']);
    expect(texts([user('q1'), answer('first answer'), answer('', 'failed', 'context_length_exceeded')])).toEqual(['user: q1', 'assistant: first answer']);
    expect(texts([user('q1'), answer('so far', 'stopped', 'stop_requested'), answer('', 'failed', 'content_filter')])).toEqual(['user: q1', 'assistant: so far']);
  });

  it('carries answers without their thinking, only the later of two answers to one question, never a streaming one', () => {
    expect(texts([user('q1'), answer('<think>hmm</think>Yes.'), user('q2'), answer('old', 'stopped'), answer('new'), user('q3'), answer('so far', 'streaming', null)]))
      .toEqual(['user: q1', 'assistant: Yes.', 'user: q2', 'assistant: new', 'user: q3']);
  });
});
