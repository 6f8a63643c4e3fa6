import { cleanTitle, graphemes, isVisibleTitle, PRINTABLE_ASCII, truncateCodePoints, withoutMarkdown } from '../conversations/title.js';

const TITLE_CHARS = 60;

/** The first `max` characters as a reader counts them: an emoji sequence or an accented letter is never cut. */
function firstGraphemes(text: string, max: number): { head: string; isCut: boolean } {
  // The usual title, cut without segmenting: there each character is a grapheme.
  if (PRINTABLE_ASCII.test(text.slice(0, max + 1))) return { head: text.slice(0, max), isCut: text.length > max };
  let head = '';
  let count = 0;
  for (const { segment } of graphemes.segment(text)) {
    if (count === max) return { head, isCut: true };
    head += segment;
    count++;
  }
  return { head, isCut: false };
}

/**
 * A conversation title from its first user message: one line, cut at a word boundary. A message of files without
 * a question (`fileNames`) is named after them: "notes.txt", "notes.txt and 2 more files".
 */
export function autoTitle(message: string, fileNames: readonly string[] = []): string {
  if (message.trim() === '' && fileNames.length > 0) {
    const more = fileNames.length - 1;
    return cut(`${cleanTitle(fileNames[0])}${more > 0 ? ` and ${more} more file${more === 1 ? '' : 's'}` : ''}`);
  }
  return cut(cleanTitle(withoutMarkdown(message)) || cleanTitle(message));
}

/** A title's line cut to TITLE_CHARS at a word boundary ('New conversation' when it shows nothing). */
function cut(line: string): string {
  const { head: within, isCut } = firstGraphemes(line, TITLE_CHARS);
  // One that shows nothing (a lone combining mark, only format characters) is blank, as a rename would find it.
  if (!isCut) return line && isVisibleTitle(line) ? line : 'New conversation';
  const cut = firstGraphemes(line, TITLE_CHARS + 1).head;
  const space = cut.lastIndexOf(' ');
  // A single very long word is cut where it must be.
  const head = space >= TITLE_CHARS / 2 ? cut.slice(0, space) : within;
  return `${head.replace(/[\s.,;:!?-]+$/, '')}…`;
}

/** A model-written title, cleaned of quotes, a "Title:" prefix and trailing punctuation. */
export function cleanModelTitle(raw: string): string | undefined {
  // Cut long before the patterns below run: the trailing one is retried from every position of a
  // run of spaces or dots not at the end (30,000 spaces then a letter: 0.6 s); a title keeps 80.
  const line = (raw.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '').slice(0, 1000);
  const title = truncateCodePoints(cleanTitle(line.replace(/^title:\s*/i, '').replace(/^["'“”*#\s]+|["'“”*\s.]+$/g, '')), 80).trim();
  return title.length > 0 && isVisibleTitle(title) ? title : undefined;
}
