import { countTokens as exact } from 'gpt-tokenizer';
import { countTokens, truncateToTokens } from './token-count.js';

describe('token counting', () => {
  it('matches the tokenizer on ordinary text and treats special-token strings as text', () => {
    const text = 'Summarise this PDF, please.\n```ts\nconst x = 1;\n```\n<|endoftext|>';
    expect(countTokens(text)).toBe(exact(text, { disallowedSpecial: new Set() }));
    expect(countTokens('')).toBe(0);
  });

  it('stays linear on one long run of a letter (a hostile message cannot stall the event loop)', () => {
    // Quadratic BPE needed minutes for these inputs, far past the test timeout; linear takes milliseconds.
    const n = countTokens('b'.repeat(200_000));
    const cut = truncateToTokens('b'.repeat(1_000_000), 16_000);
    expect(n).toBeGreaterThan(200_000 / 16);
    expect(countTokens(cut)).toBeLessThanOrEqual(16_000);
    expect(cut.length).toBeGreaterThan(16_000);
  });

  it('truncates to a prefix within the budget', () => {
    const text = 'word '.repeat(1000);
    const cut = truncateToTokens(text, 100);
    expect(text.startsWith(cut)).toBe(true);
    expect(countTokens(cut)).toBeLessThanOrEqual(100);
    expect(countTokens(cut)).toBeGreaterThanOrEqual(98);
    expect(truncateToTokens('short', 100)).toBe('short');
    expect(truncateToTokens('anything', 0)).toBe('');
  });
});
