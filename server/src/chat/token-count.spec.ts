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

  it('stays linear on a long run of any character: spaces of every kind, punctuation, CJK, emoji', () => {
    // Before every piece was bounded, whitespace runs went to BPE whole: "x" + 32,000 U+3000 + "x" took 6 s,
    // NBSP 3.3 s, tabs, newlines or "/\n" (punctuation takes line breaks after it) 0.8 s, plain spaces 0.6 s.
    // Linear takes 1 to 40 ms. Measured in CPU time, so that other processes on a busy machine do not count.
    const runs = ['\u3000', '\u00a0', ' ', '\n', '\r\n', '\t', '/\n', '!', '.,', '漢', '😀', '👨‍👩‍👧', 'é\u0301'];
    const timed = (text: string) => {
      const started = process.cpuUsage();
      const n = countTokens(text);
      const { user, system } = process.cpuUsage(started);
      return { n, ms: (user + system) / 1000 };
    };
    countTokens('warm up');
    for (const unit of runs) {
      const reps = Math.floor(32_000 / unit.length);
      let { n, ms } = timed(`x${unit.repeat(reps)}x`);
      // A second try after a slow moment (a garbage collection), one unit shorter: the tokenizer caches the
      // pieces it has seen.
      if (ms >= 200) ({ n, ms } = timed(`x${unit.repeat(reps - 1)}x`));
      expect(ms, JSON.stringify(unit)).toBeLessThan(200);
      expect(n, JSON.stringify(unit)).toBeGreaterThan(0);
      expect(n, JSON.stringify(unit)).toBeLessThanOrEqual(unit.length * reps + 2);
    }
  });

  it('counts a long run within a token per slice of the exact count, and ordinary text exactly', () => {
    const P = { disallowedSpecial: new Set<string>() };
    // Short enough for the exact (quadratic) count to be quick.
    for (const unit of ['\u3000', '\u00a0', ' ', '\n', '\t', '/\n', '!', '漢', '😀']) {
      const text = `x${unit.repeat(Math.floor(2_000 / unit.length))}x`;
      const slices = Math.ceil(text.length / 128);
      expect(Math.abs(countTokens(text) - exact(text, P)), JSON.stringify(unit)).toBeLessThanOrEqual(slices);
    }
    // Spaces of all kinds between words, indentation, blank lines, tables, lines without a space (CSV), words
    // up to 255 characters, CJK and emoji: nothing is cut.
    const ordinary = [
      'Les  pastéis\u00a0de Belém\u3000東京 😀👨‍👩‍👧\n\n\tindented\r\n    code();  // note\n| a | b |\n|---|---|\n',
      `${'word '.repeat(300)}\n${'  '.repeat(120)}end`,
      'id,name,total\r\n'.repeat(40),
      `${'b'.repeat(250)} ${'c'.repeat(250)}`,
    ].join('\n');
    expect(countTokens(ordinary)).toBe(exact(ordinary, P));
  });

  it('never splits a surrogate pair: emoji count as the tokenizer counts them and truncate whole', () => {
    // Slices of 128 UTF-16 units after one ASCII letter used to fall between the halves of an emoji.
    const text = `a${'😀'.repeat(1_000)}`;
    expect(countTokens(text)).toBe(exact(text));
    for (const budget of [100, 500]) {
      const cut = truncateToTokens(text, budget);
      expect(text.startsWith(cut)).toBe(true);
      expect(cut.length).toBeGreaterThan(budget);
      expect(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(cut)).toBe(false);
    }
    // The first cut, at 8 characters a token, falls inside the emoji: it goes whole or not at all.
    expect(truncateToTokens(`${' '.repeat(799)}😀 more`, 100)).toBe(' '.repeat(799));
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
