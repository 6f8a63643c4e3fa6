import { splitThinking } from './think-block';

describe('splitThinking', () => {
  it('splits a complete block from the answer after it, the answer\'s leading spaces trimmed', () => {
    expect(splitThinking('<think>\nLet me see.\n</think>\n\nThe answer is **4**.')).toEqual({
      thinking: '\nLet me see.\n', isThinkingDone: true, answer: 'The answer is **4**.',
    });
  });

  it('takes everything after an unclosed <think> as thinking in progress, with no answer yet', () => {
    expect(splitThinking('<think>First, 2 + 2')).toEqual({ thinking: 'First, 2 + 2', isThinkingDone: false, answer: '' });
    expect(splitThinking('<think>')).toEqual({ thinking: '', isThinkingDone: false, answer: '' });
  });

  it('finds a block after leading spaces and new lines', () => {
    expect(splitThinking(' \n\t<think>hm</think>Yes')).toEqual({ thinking: 'hm', isThinkingDone: true, answer: 'Yes' });
  });

  it('leaves content without a block untouched, spaces included', () => {
    expect(splitThinking('  Plain *answer*\n')).toEqual({ thinking: null, isThinkingDone: true, answer: '  Plain *answer*\n' });
    expect(splitThinking('')).toEqual({ thinking: null, isThinkingDone: true, answer: '' });
  });

  it('leaves a <think> that is not at the start as the answer\'s own text', () => {
    const content = 'Models write <think>like this</think> first.';
    expect(splitThinking(content)).toEqual({ thinking: null, isThinkingDone: true, answer: content });
    expect(splitThinking('<thinking>no</thinking>').thinking).toBeNull();
  });

  it('splits an empty block (a model asked not to think)', () => {
    expect(splitThinking('<think>\n\n</think>\n\nHello')).toEqual({ thinking: '\n\n', isThinkingDone: true, answer: 'Hello' });
  });

  it('gives no answer for a complete block with nothing after it', () => {
    expect(splitThinking('<think>I ran out of tokens</think>\n  ')).toEqual({ thinking: 'I ran out of tokens', isThinkingDone: true, answer: '' });
  });

  it('splits the first block only: a second one is part of the answer', () => {
    expect(splitThinking('<think>a</think>B <think>c</think>')).toEqual({ thinking: 'a', isThinkingDone: true, answer: 'B <think>c</think>' });
  });
});
