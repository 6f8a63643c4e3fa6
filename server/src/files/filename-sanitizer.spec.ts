import { attachmentDisposition, fileExtension, MAX_FILENAME_LENGTH, sanitizeFilename } from './filename-sanitizer.js';

describe('sanitizeFilename', () => {
  it.each([
    ['report.pdf', 'report.pdf'],
    ['../../etc/passwd', 'passwd'],
    ['..\\..\\windows\\win.ini', 'win.ini'],
    ['C:\\Users\\me\\notes.txt', 'notes.txt'],
    ['a\u0000b\u0007c\u001b[31m.txt', 'abc[31m.txt'],
    ['evil\u202Etxt.exe', 'eviltxt.exe'],
    ['in\u2066vis\u2069ible\u200b.md', 'invisible.md'],
    ['what?is:this*.md', 'what_is_this_.md'],
    ['"quoted" <tag>.js', '_quoted_ _tag_.js'],
    ['.hidden.txt', 'hidden.txt'],
    ['trailing.txt. . ', 'trailing.txt'],
    ['', 'file'],
    ['///', 'file'],
    ['e\u0301te\u0301.txt', 'été.txt'],
  ])('%j → %j', (raw, expected) => {
    expect(sanitizeFilename(raw)).toBe(expected);
  });

  it.each([
    ['Hangul fillers', '\u3164\u115f\u1160\uffa0notes\u3164.txt', 'notes.txt'],
    ['soft hyphen, grapheme joiner, Mongolian vowel separator, Braille blank', 'in\u00advi\u034fsi\u180eble\u2800.md', 'invisible.md'],
    ['tag characters', 'plan\u{E0041}\u{E0042}\u{E007F}.txt', 'plan.txt'],
    ['stray variation selectors', '\ufe0fa\ufe0f\ufe0f b\u{E0100} \ufe00c\ufe00\ufe00.txt', 'a b c\ufe00.txt'],
    ['ZWJ and ZWNJ outside emoji', 'pay\u200dpal\u200c.txt', 'paypal.txt'],
  ])('removes %s', (_what, raw, expected) => {
    expect(sanitizeFilename(raw)).toBe(expected);
  });

  it('keeps what emoji need: ZWJ inside a sequence, a selector after its emoji, a flag\'s tag sequence', () => {
    for (const emoji of ['👨\u200d👩\u200d👧', '❤\ufe0f', '👁\ufe0f\u200d🗨\ufe0f', '👍🏽', '1\ufe0f\u20e3', '☺\ufe0e', '🏴\u{E0067}\u{E0062}\u{E0065}\u{E006E}\u{E0067}\u{E007F}', '葛\u{E0100}']) {
      expect(sanitizeFilename(`trip ${emoji}.txt`)).toBe(`trip ${emoji}.txt`);
    }
  });

  it('treats a name that shows nothing after cleaning as an empty one', () => {
    for (const blank of ['\u3164', '\u3164\u3164\u3164', '\u115f\u1160\uffa0', '\u2800 \u00ad', '\u{E0041}\u{E007F}', '\ufe0f\ufe0f', '\u200d', '\u0301\u0301']) {
      expect(sanitizeFilename(blank)).toBe(sanitizeFilename(''));
    }
    // Blank before its extension: exactly what a name that was only the extension gets.
    expect(sanitizeFilename('\u3164\u3164.txt')).toBe(sanitizeFilename('.txt'));
    expect(sanitizeFilename('\u{E0020}\ufe0f.pdf')).toBe(sanitizeFilename('.pdf'));
  });

  it('cuts long names to the maximum, keeping the extension and whole characters', () => {
    const name = sanitizeFilename(`${'😀'.repeat(300)}.json`);
    expect(Array.from(name)).toHaveLength(MAX_FILENAME_LENGTH);
    expect(name.endsWith('😀.json')).toBe(true);
  });
});

describe('fileExtension', () => {
  it.each([
    ['a.PDF', '.pdf'], ['a.tar.gz', '.gz'], ['noext', ''], ['a.', ''], ['a.pdf.exe', '.exe'], ['a.p-f', ''],
  ])('%s → %j', (name, ext) => expect(fileExtension(name)).toBe(ext));
});

describe('attachmentDisposition', () => {
  it('always says attachment, with an ASCII fallback and the RFC 8187 UTF-8 name', () => {
    expect(attachmentDisposition('plain.txt')).toBe('attachment; filename="plain.txt"; filename*=UTF-8\'\'plain.txt');
    expect(attachmentDisposition('résumé (1).pdf'))
      .toBe('attachment; filename="r_sum_ (1).pdf"; filename*=UTF-8\'\'r%C3%A9sum%C3%A9%20%281%29.pdf');
    expect(attachmentDisposition('50%_\\x.md')).toBe('attachment; filename="50___x.md"; filename*=UTF-8\'\'50%25_%5Cx.md');
  });
});
