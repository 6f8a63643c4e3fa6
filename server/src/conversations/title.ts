import { withoutHiddenTags } from '../common/hidden-tags.js';

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
  return truncateCodePoints(titleLine(raw), TITLE_MAX).trimEnd();
}

/**
 * A title cleaned as cleanTitle cleans it, but not cut to TITLE_MAX: what a rename's length limit
 * is checked on (a title too long is refused, not shortened; spaces around it do not count).
 */
export function titleLine(raw: string): string {
  return withoutHiddenTags(raw.replace(/\s+/g, ' ').replace(INVISIBLE, '')).replace(/ {2,}/g, ' ').trim();
}

/** Whether a cleaned title shows anything (not only spaces, joiners or other format characters). */
export function isVisibleTitle(title: string): boolean {
  // Joiners, variation selectors and combining marks show nothing on their own, nor do format characters (\p{Cf}:
  // tag characters, interlinear annotation marks U+FFF9–FFFB, musical and shorthand format controls), but the
  // prepended concatenation marks, which draw a sign (U+0600 Arabic number sign, U+06DD end of ayah, U+110BD Kaithi).
  return /[^\s\ufe00-\ufe0f\p{M}\p{Cf}]|[\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u{110bd}\u{110cd}]/u.test(title);
}

/** A title's length as it is limited: in code points (an emoji is one; a variation selector counts too). */
export function titleLength(title: string): number {
  return Array.from(title).length;
}

/**
 * A text as search compares it: any case, without accents or other marks ("ecole" finds "École", "istanbul"
 * finds "İstanbul"), compatibility forms unified, Greek's final sigma as any sigma, and ß (ẞ) as "ss", as
 * Unicode's full case folding has it ("strasse" finds "Straße"). The stored search text is this fold: a change
 * here needs a migration that folds the rows already stored again (1796500000000-SearchFoldsSharpS.ts).
 */
export function foldForSearch(text: string): string {
  // Marks go before NFKD too (the result is the same for every character): its canonical reordering sorts a
  // run of marks by insertion, so 100,000 of one class then 100,000 of another held the event loop 16.7 s.
  return text.replace(/\p{M}+/gu, '').normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/ς/g, 'σ').replace(/ß/g, 'ss');
}

// The patterns below read user input (a title is made from every first message; search runs them on every
// match): each is written so that a run of characters can be matched one way only. The divider-row pattern they
// replace (`(?:[ \t]*:?-{3,}:?[ \t]*\|?)+`) could split a run of dashes many ways: a line of 50 dashes and an "x"
// took it 2.5 s, and 100 dashes would have held the server for good.

/** A fence's line, with its language tag: ```python, ~~~ (a ``` line with ticks after it is inline code). */
const FENCE_LINE = /^[ \t]*(?:`{3,}[^`\n]*|~{3,}[^\n]*)$/gm;
/** A table's divider row (| --- | :-: | --: |, or ---|:-: without outer pipes): cells of dashes and colons between pipes. */
const TABLE_DIVIDER = /^[ \t]*(?:\|[ \t]*)?:?-+:?(?:[ \t]*\|[ \t]*:?-+:?)*(?:[ \t]*\|)?[ \t]*$/gm;
/** A thematic break (---, * * *, ___) or a heading's underline (===). */
const RULE_LINE = /^[ \t]*([-*_=])(?:[ \t]*\1){2,}[ \t]*$/gm;
/** What starts a quote's, a list item's or a task's line: "> ", "- ", "1. ", "- [x] ", nested "> - ". */
const LINE_PREFIX = /^[ \t]*(?:>[ \t]?)*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+(?:\[[ xX]\][ \t]+)?)?/gm;
/** A heading's line: its hashes go, and the closing ones of "## Title ##". */
const HEADING_LINE = /^[ \t]*#{1,6}[ \t]+(.*)$/gm;
const HEADING_CLOSE = /(?<![ \t])[ \t]+#+[ \t]*$/;
/**
 * A table row's pipe with the spaces around it. Spaces before it are taken from the start of their run only:
 * `[ \t]*\|` alone was tried from each space of a run without a pipe after it ("|a", 32,000 spaces, "x|" took
 * 0.7 s). A match starts at the start of a run or at a pipe, as before: the one before took the spaces after it.
 */
const TABLE_PIPE = /(?:(?<![ \t])[ \t]+)?\|[ \t]*/g;
/**
 * Emphasis with * and ~~ where it wraps words, as Markdown reads it: not inside a word or a formula ("2*3*4",
 * "2**10" stay), nor after a backslash (\*).
 */
const STAR_EMPHASIS = /(^|[^\w*\\])(\*{1,3})(?=[^\s*])([^*\n]*?[^\s*\\])\2(?![\w*])/g;
const STRIKE = /(^|[^~\\])~~(?=[^\s~])([^~\n]*?[^\s~\\])~~(?!~)/g;
/**
 * Emphasis with _ only between spaces or punctuation: names keep their underscores (snake_case, __init__.py,
 * which Markdown itself would read as bold "init").
 */
const UNDERSCORE_EMPHASIS = /(^|[\s(["'])(_{1,3})(?=[^\s_])([^_\n]*?[^\s_\\])\2(?=$|[\s)\]"',;:!?]|\.(?!\w))/g;

/**
 * A message's text without its Markdown marks (headings, quotes, list bullets, emphasis, code ticks and fences
 * with their language, table pipes and divider rows, a link's address): a title read "## Edge cases | Region |
 * Q1 revenue", "Table: Lang Year --- :-: --:" or "First question js console.log()", and a search snippet
 * "**Lisbon** in [May](https://…)". A code block's text stays: it can be what the message is about. Written by
 * hand rather than with a Markdown parser (marked, the client's): a user's message is shown as plain text, where
 * "2*3*4" is not emphasis, and this runs on every search match, line by line, in linear time.
 */
export function withoutMarkdown(text: string): string {
  return text
    // A link or an image shows its text: [May](https://…), ![a map](map.png), [May][1] and <https://…>; a
    // reference's definition ([1]: https://…) goes. No [ inside the brackets: from each [ the search stops at the
    // next one (30,000 ['s took the pattern that read to the line's end 1.5 s).
    .replace(/!?\[([^[\]\n]*)\]\((?:[^()\s]|\([^()\s]*\))*(?:\s+"[^"\n]*")?\)/g, '$1')
    .replace(/!?\[([^[\]\n]+)\]\[[^[\]\n]*\]/g, '$1')
    .replace(/^[ \t]*\[[^[\]\n]+\]:[ \t]*\S[^\n]*$/gm, '')
    // No < inside an autolink (CommonMark has none either): from each < the search stops at the next one
    // ("<http://" 4,000 times, no >, took 70 ms a message and froze search when it read each to the end).
    .replace(/<((?:https?:\/\/|mailto:)[^<>\s]+)>/g, '$1')
    .replace(FENCE_LINE, '')
    // A divider row has a pipe (a line of dashes alone is a rule, or a list item's dash).
    .replace(TABLE_DIVIDER, (row) => (row.includes('|') ? '' : row))
    .replace(RULE_LINE, '')
    .replace(LINE_PREFIX, '')
    .replace(HEADING_LINE, (_line, heading: string) => heading.replace(HEADING_CLOSE, ''))
    // A table's rows: the pipes become spaces ("y || z" in prose stays).
    .replace(/^[ \t]*\|.*\|[ \t]*$/gm, (row) => row.replace(TABLE_PIPE, ' '))
    .replace(/`+/g, '')
    .replace(STAR_EMPHASIS, '$1$3')
    .replace(UNDERSCORE_EMPHASIS, '$1$3')
    .replace(STRIKE, '$1$2');
}

/**
 * Whether a message shows anything, by a title's rule: not only spaces, controls and invisible characters (a
 * message of zero-width spaces was sent, stored and titled "New conversation" while `trim` saw text). A visible
 * ASCII character settles it at once, as it does for nearly every message.
 */
export function showsAnything(text: string): boolean {
  return /[!-~]/.test(text) || isVisibleTitle(titleLine(text));
}
