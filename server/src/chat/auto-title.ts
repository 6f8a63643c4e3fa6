const TITLE_CHARS = 60;

/** A conversation title from its first user message: one line, cut at a word boundary. */
export function autoTitle(message: string): string {
  const line = message.replace(/\s+/g, ' ').trim();
  if (line.length <= TITLE_CHARS) return line || 'New conversation';
  const cut = line.slice(0, TITLE_CHARS + 1);
  const space = cut.lastIndexOf(' ');
  // A single very long word is cut where it must be.
  const head = space >= TITLE_CHARS / 2 ? cut.slice(0, space) : line.slice(0, TITLE_CHARS);
  return `${head.replace(/[\s.,;:!?-]+$/, '')}…`;
}

/** A model-written title, cleaned of quotes, a "Title:" prefix and trailing punctuation. */
export function cleanModelTitle(raw: string): string | undefined {
  const line = raw.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? '';
  const title = line.replace(/^title:\s*/i, '').replace(/^["'“”*#\s]+|["'“”*\s.]+$/g, '').slice(0, 80).trim();
  return title.length > 0 ? title : undefined;
}
