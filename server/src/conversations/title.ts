/** The longest title, in characters (code points). */
export const TITLE_MAX = 200;

// Characters that change how a title reads without being seen: C0/C1 controls, bidi marks,
// overrides and isolates ("abc\u202Eevil" shows reversed), zero-width spaces, word joiners and
// the BOM. ZWJ and ZWNJ (U+200D, U+200C) stay: emoji sequences and several scripts need them.
// Also the characters that render as blank space without being spaces: soft hyphen, combining grapheme
// joiner, Hangul fillers, Mongolian vowel separator, Braille blank.
// eslint-disable-next-line no-control-regex, no-misleading-character-class -- removing these characters is the point
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200e\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufeff\uffa0]/g;

/** Characters as a reader counts them (an emoji sequence, a letter with its accents: one each). */
export const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Text in which every character is a grapheme of its own (no CR LF pair, no joiner, no mark). */
export const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * At most `max` code points, cut between characters as a reader sees them: neither a surrogate pair nor an
 * emoji sequence (👨‍👩‍👧) or a letter with its accents is cut in two.
 */
export function truncateCodePoints(text: string, max: number): string {
  if (text.length <= max) return text;
  // Printable ASCII up to and including the character after the cut: one character is one
  // grapheme there, so the cut is exact without segmenting (every message with a new title comes
  // here; the segmenter's iteration cost ~0.1 ms of the send's path).
  if (PRINTABLE_ASCII.test(text.slice(0, max + 1))) return text.slice(0, max);
  let head = '';
  let points = 0;
  for (const { segment } of graphemes.segment(text)) {
    const size = Array.from(segment).length;
    if (points + size > max) break;
    head += segment;
    points += size;
  }
  return head;
}

/**
 * A title as stored and shown: one line, without invisible or control characters, at most
 * TITLE_MAX characters. Titles come from users (rename), from their first message and from the
 * model; all go through here.
 */
export function cleanTitle(raw: string): string {
  const line = raw.replace(/\s+/g, ' ').replace(INVISIBLE, '').replace(/ {2,}/g, ' ').trim();
  return truncateCodePoints(line, TITLE_MAX).trimEnd();
}

/** Whether a cleaned title shows anything (not only spaces or joiners). */
export function isVisibleTitle(title: string): boolean {
  // Joiners, variation selectors and combining marks show nothing on their own.
  // eslint-disable-next-line no-misleading-character-class -- each listed on its own, not as a sequence
  return /[^\s\u200c\u200d\ufe00-\ufe0f\p{M}]/u.test(title);
}

/** A title's length as it is limited: in code points (an emoji is one; a variation selector counts too). */
export function titleLength(title: string): number {
  return Array.from(title).length;
}

/**
 * A text as search compares it: any case, without accents or other marks ("ecole" finds "École", "istanbul"
 * finds "İstanbul"), compatibility forms unified, and Greek's final sigma as any sigma.
 */
export function foldForSearch(text: string): string {
  return text.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/ς/g, 'σ');
}

/**
 * A message's text without its Markdown marks (headings, quotes, list bullets, emphasis, code ticks,
 * table pipes, a link's address): a title read "## Edge cases | Region | Q1 revenue", and a search
 * snippet "**Lisbon** in [May](https://…)".
 */
export function withoutMarkdown(text: string): string {
  return text
    // A link or an image shows its text: [May](https://…) and ![a map](map.png).
    .replace(/!?\[([^\]\n]*)\]\([^)\s]*(?:\s+"[^"\n]*")?\)/g, '$1')
    .replace(/^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+|\d+[.)][ \t]+)/gm, '')
    // A table: its separator row goes, the pipes of its rows become spaces ("y || z" in prose stays).
    .replace(/^[ \t]*\|?(?:[ \t]*:?-{3,}:?[ \t]*\|?)+[ \t]*$/gm, '')
    .replace(/^[ \t]*\|.*\|[ \t]*$/gm, (row) => row.replace(/[ \t]*\|[ \t]*/g, ' '))
    // Code ticks, and bold only where it wraps words ("2**10" stays; __init__.py and ~~ are left as written).
    .replace(/`+/g, '')
    .replace(/(^|[^\w*])\*\*(?=\S)([^*\n]+?)(?<=\S)\*\*(?![\w*])/g, '$1$2');
}
