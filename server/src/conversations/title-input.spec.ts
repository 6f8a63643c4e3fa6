import { cleanTitle, TITLE_MAX, titleLength, titleLine } from './title.js';

/** A rename's title is checked as cleanTitle stores it, but whole (cleanTitle cuts at TITLE_MAX). */
describe('titleLine', () => {
  it('cleans as cleanTitle does: one line, invisible characters out, spaces collapsed and trimmed', () => {
    expect(titleLine('  Trip \n\t to   Lisbon  ')).toBe('Trip to Lisbon');
    expect(titleLine('a\u0001b\u0007c \u202eevil\u200b')).toBe('abc evil');
    expect(titleLine('a \u200b b')).toBe('a b');
    expect(titleLine(' \u200b\u202e ')).toBe('');
    expect(titleLine('👨\u200d👩\u200d👧 trip')).toBe('👨\u200d👩\u200d👧 trip');
  });

  it('never cuts: a title too long once cleaned stays too long', () => {
    expect(titleLine(`  ${'x'.repeat(300)}  `)).toBe('x'.repeat(300));
    expect(titleLine(`${'x\u200b'.repeat(250)}`)).toBe('x'.repeat(250));
    expect(titleLength(titleLine('😀'.repeat(250)))).toBe(250);
  });

  it('agrees with cleanTitle on every title that fits, and cleanTitle keeps its start otherwise', () => {
    // Pieces that exercise each step: whitespace of several kinds, invisible characters, astral and joined characters.
    const pieces = ['a', 'Z', 'é', ' ', '  ', '\t', '\n', '\r\n', '\u3000', '\u00a0', '\u200b', '\u202e', '\u0007', '\ufeff', '\u00ad', '😀', '👨\u200d👩', '❤️', 'e\u0301', '\u2800'];
    let seed = 7;
    const next = (): number => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed;
    };
    for (let i = 0; i < 2000; i++) {
      const length = next() % 320;
      let raw = '';
      for (let j = 0; j < length; j++) raw += pieces[next() % pieces.length];
      const whole = titleLine(raw);
      const stored = cleanTitle(raw);
      if (titleLength(whole) <= TITLE_MAX) expect(whole, JSON.stringify(raw)).toBe(stored);
      else expect(whole.startsWith(stored), JSON.stringify(raw)).toBe(true);
    }
  });
});
