import { withoutThinking } from './think-block.js';

describe('withoutThinking', () => {
  it('drops a reasoning model\'s leading <think> block, and only a leading one', () => {
    expect(withoutThinking('<think>hmm, 2+2</think>\n\nIt is **4**.')).toBe('It is **4**.');
    expect(withoutThinking('\n <think>a</think>b')).toBe('b');
    expect(withoutThinking('<think>still thinking when cut')).toBe('');
    expect(withoutThinking('<think></think>')).toBe('');
    expect(withoutThinking('Use <think> tags like <think>x</think>.')).toBe('Use <think> tags like <think>x</think>.');
    expect(withoutThinking('plain answer')).toBe('plain answer');
  });
});
