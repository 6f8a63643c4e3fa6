import { cleanTitle, truncateCodePoints } from '../conversations/title.js';

const TITLE_CHARS = 60;

/**
 * The first message's text without its Markdown marks (headings, quotes, list bullets, emphasis,
 * code ticks, table pipes): a title read "## Edge cases | Region | Q1 revenue".
 */
function withoutMarkdown(text: string): string {
  return text
    .replace(/^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d+[.)][ \t]+)/gm, '')
    .replace(/^[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|?)+[ \t]*$/gm, '')
    .replace(/`+|\*{2,}|_{2,}|~{2,}/g, '')
    .replace(/[ \t]*\|[ \t]*/g, ' ');
}

/** A conversation title from its first user message: one line, cut at a word boundary. */
export function autoTitle(message: string): string {
  const line = cleanTitle(withoutMarkdown(message)) || cleanTitle(message);
  const points = Array.from(line);
  if (points.length <= TITLE_CHARS) return line || 'New conversation';
  const cut = points.slice(0, TITLE_CHARS + 1).join('');
  const space = cut.lastIndexOf(' ');
  // A single very long word is cut where it must be.
  const head = space >= TITLE_CHARS / 2 ? cut.slice(0, space) : truncateCodePoints(line, TITLE_CHARS);
  return `${head.replace(/[\s.,;:!?-]+$/, '')}…`;
}

/** A model-written title, cleaned of quotes, a "Title:" prefix and trailing punctuation. */
export function cleanModelTitle(raw: string): string | undefined {
  const line = raw.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
  const title = truncateCodePoints(cleanTitle(line.replace(/^title:\s*/i, '').replace(/^["'“”*#\s]+|["'“”*\s.]+$/g, '')), 80).trim();
  return title.length > 0 ? title : undefined;
}
