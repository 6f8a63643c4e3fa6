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

  it('takes linear time on runs of dots and spaces, whatever the length of what is sent', () => {
    // The trailing-dots pattern was tried from every dot of a run that a letter ends: 148-356 ms
    // for 16,000 dots, 4.5 s for 64,000 (a multipart part's header holds some 80 KB).
    const started = process.cpuUsage();
    for (const run of ['.'.repeat(64_000), ' '.repeat(64_000), '. '.repeat(32_000)]) {
      for (const raw of [run, `a${run}b`, `a${run}`, `${run}b.txt`, `dir/${run}x${run}.pdf`]) sanitizeFilename(raw);
    }
    const { user, system } = process.cpuUsage(started);
    expect((user + system) / 1000).toBeLessThan(100);
    expect(sanitizeFilename('.'.repeat(16_000))).toBe('file');
    // ".b" is its extension: kept, as before.
    expect(sanitizeFilename(`a${'.'.repeat(16_000)}b`)).toBe(`a${'.'.repeat(MAX_FILENAME_LENGTH - 3)}.b`);
    expect(sanitizeFilename(`a${' .'.repeat(8_000)} `)).toBe('a');
  });

  it('reads a very long name\'s start and its extension only', () => {
    const long = sanitizeFilename(`${'x'.repeat(50_000)}${'😀'.repeat(10)}.PDF`);
    expect(long).toBe(`${'x'.repeat(MAX_FILENAME_LENGTH - 4)}.pdf`);
    // Never cut inside a character: an emoji across the cut is dropped whole, not halved.
    const emoji = sanitizeFilename(`${'😀'.repeat(30_000)}.txt`);
    expect(Array.from(emoji)).toHaveLength(MAX_FILENAME_LENGTH);
    expect(emoji).toBe(`${'😀'.repeat(MAX_FILENAME_LENGTH - 4)}.txt`);
    expect(() => attachmentDisposition(emoji)).not.toThrow();
  });

  it('cuts long names to the maximum, keeping the extension and whole characters', () => {
    const name = sanitizeFilename(`${'😀'.repeat(300)}.json`);
    expect(Array.from(name)).toHaveLength(MAX_FILENAME_LENGTH);
    expect(name.endsWith('😀.json')).toBe(true);
    // As a reader sees characters: an emoji sequence across the cut goes whole, no member or joiner (U+200D) left of it.
    const family = '👨\u200d👩\u200d👧';
    const families = sanitizeFilename(`${family.repeat(100)}.md`);
    expect(families).toBe(`${family.repeat(Math.floor((MAX_FILENAME_LENGTH - 3) / 5))}.md`);
    expect(families).not.toMatch(/\u200d\.md$/);
    const flags = sanitizeFilename(`${'a'.repeat(MAX_FILENAME_LENGTH - 4)}🇵🇹🇵🇹.txt`);
    expect(flags).toBe(`${'a'.repeat(MAX_FILENAME_LENGTH - 4)}.txt`);
  });
  it('renames Windows device names, whatever their case and extension, so the file can be saved there', () => {
    for (const name of ['CON.txt', 'nul.md', 'Com1.py', 'LPT9.json', 'aux', 'prn.tar.txt']) expect(sanitizeFilename(name)).toBe(`_${name}`);
    for (const name of ['console.txt', 'com10.txt', 'nul_report.md', 'a.con.txt']) expect(sanitizeFilename(name)).toBe(name);
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
