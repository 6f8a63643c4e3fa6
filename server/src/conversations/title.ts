/** The longest title, in characters (code points). */
export const TITLE_MAX = 200;

// Characters that change how a title reads without being seen: C0/C1 controls, bidi marks,
// overrides and isolates ("abc\u202Eevil" shows reversed), zero-width spaces, word joiners and
// the BOM. ZWJ and ZWNJ (U+200D, U+200C) stay: emoji sequences and several scripts need them.
// eslint-disable-next-line no-control-regex -- removing control characters is the point
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200b\u200e\u200f\u202a-\u202e\u2060-\u206f\ufeff]/g;

/** At most `max` code points: a character outside the BMP (an emoji) is never cut in two. */
export function truncateCodePoints(text: string, max: number): string {
  if (text.length <= max) return text;
  return Array.from(text).slice(0, max).join('');
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
  return /[^\s\u200c\u200d]/.test(title);
}
