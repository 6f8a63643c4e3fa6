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
