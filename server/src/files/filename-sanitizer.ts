import { withoutHiddenTags } from '../common/hidden-tags.js';

/** Longest filename kept, in code points (the column holds 255; room is left for odd encodings). */
export const MAX_FILENAME_LENGTH = 200;

/**
 * The most of a name that is read, in UTF-16 code units: its start, and then its extension. A
 * file system's names hold 255; a multipart part's header, some 80 KB, and every pass below costs
 * its length, so far more than a name needs is not read at all.
 */
export const MAX_FILENAME_INPUT = 1024;

// C0 and C1 controls and DEL; bidi marks, embeddings, overrides and isolates (which can make
// "evil\u202Etxt.exe" read as "evilexe.txt"); zero-width characters, word joiners and the BOM; and,
// as in titles (conversations/title.ts), the characters that render as blank space without being
// spaces: soft hyphen, combining grapheme joiner, Hangul fillers (U+115F, U+1160, U+3164, U+FFA0),
// Mongolian vowel separator, Braille blank. ZWJ (U+200D) is left to EMOJI_ZWJ below.
// eslint-disable-next-line no-control-regex, no-misleading-character-class -- removing these characters is the point
const INVISIBLE = /[\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u180e\u200b\u200c\u200e\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufeff\uffa0]/g;
// A variation selector shows nothing by itself: kept only right after a character it can modify.
// VS15/VS16 (text or emoji style) after an emoji character, VS17–256 after an ideograph, VS1–14
// after any character but a space, a mark, a format character or another selector.
const STRAY_VARIATION_SELECTOR = /(?<![^\s\p{M}\p{Cf}])[\ufe00-\ufe0d]|(?<!\p{Emoji})[\ufe0e\ufe0f]|(?<!\p{Ideographic})[\u{E0100}-\u{E01EF}]/gu;
// ZWJ joins emoji into one (👨‍👩‍👧); anywhere else it is an invisible character: kept only between two emoji.
const EMOJI_ZWJ = /(?<![\p{Extended_Pictographic}\p{Emoji_Modifier}\ufe0f])\u200d|\u200d(?!\p{Extended_Pictographic})/gu;
// What is left shows something: not only spaces, marks and format characters (joiners, selectors).
const VISIBLE = /[^\s\p{M}\p{Cf}]/u;
// Separators and the characters Windows refuses in names, since the name is offered on download.
const RESERVED = /[/\\:*?"<>|]/g;

/**
 * The original name reduced to safe display metadata. It is never used as a path (stored
 * objects are named by session and hash), but it is shown in the SPA and sent back in
 * Content-Disposition, so it must not carry separators, controls or direction tricks.
 */
export function sanitizeFilename(raw: string): string {
  // Old browsers send a full client path; only its last segment is the name.
  const last = capped(raw.slice(Math.max(raw.lastIndexOf('/'), raw.lastIndexOf('\\')) + 1));
  // Tag characters too (common/hidden-tags.ts), flags kept whole.
  let name = withoutHiddenTags(last.normalize('NFC').replace(INVISIBLE, ''))
    .replace(STRAY_VARIATION_SELECTOR, '').replace(EMOJI_ZWJ, '').replace(RESERVED, '_').trim();
  // Leading dots would hide the file on Unix, trailing dots and spaces vanish on Windows. Not
  // /[. ]+$/: tried from every dot of a run that a letter ends, it was quadratic (148 ms for 16,000 dots).
  name = withoutTrailingDotsAndSpaces(name.replace(/^\.+/, ''));
  // A name that shows nothing is no name: treated as an empty one.
  if (!VISIBLE.test(name)) name = '';
  if (Array.from(name).length > MAX_FILENAME_LENGTH) {
    const ext = fileExtension(name);
    name = wholeCharacters(name, Math.max(1, MAX_FILENAME_LENGTH - Array.from(ext).length)).trimEnd() + ext;
  }
  if (name.length === 0) return 'file';
  // Names Windows keeps for devices, whatever their extension ("CON.txt", "nul.md", "COM1.py"):
  // such a file cannot be saved there under its name, so it gets one it can.
  return WINDOWS_DEVICE.test(name) ? `_${name}` : name;
}

const GRAPHEMES = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/**
 * The longest start of `name` within `max` code points that ends between two characters as a reader sees them:
 * cut by code point, a family emoji (👨‍👩‍👧) lost its last members and kept a joiner (U+200D) that shows nothing.
 * At least the first character, whole.
 */
function wholeCharacters(name: string, max: number): string {
  let kept = '';
  let points = 0;
  for (const { segment } of GRAPHEMES.segment(name)) {
    const size = Array.from(segment).length;
    if (points + size > max && kept !== '') break;
    kept += segment;
    points += size;
  }
  return kept;
}

/** A Windows device name (CON, PRN, AUX, NUL, COM0–9, LPT0–9, and their superscript-digit forms) as a name's stem. */
const WINDOWS_DEVICE = /^(?:con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(?:\.|$)/i;

/** A name's first MAX_FILENAME_INPUT code units, never half a surrogate pair, then its extension as sent. */
function capped(name: string): string {
  if (name.length <= MAX_FILENAME_INPUT) return name;
  const ext = EXTENSION.exec(name)?.[0] ?? '';
  let end = MAX_FILENAME_INPUT - ext.length;
  const last = name.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return name.slice(0, end) + ext;
}

function withoutTrailingDotsAndSpaces(name: string): string {
  let end = name.length;
  for (let c = name.charCodeAt(end - 1); end > 0 && (c === 46 || c === 32); c = name.charCodeAt(--end - 1));
  return name.slice(0, end);
}

const EXTENSION = /\.([A-Za-z0-9]{1,10})$/;

/** The lower-case extension with its dot (".pdf"), or '' when the name has none we could store. */
export function fileExtension(name: string): string {
  const match = EXTENSION.exec(name);
  return match?.[1] ? `.${match[1].toLowerCase()}` : '';
}

/**
 * An RFC 6266 attachment header: a quoted ASCII fallback for old clients and the exact
 * name as RFC 8187 `filename*` (UTF-8, percent-encoded).
 */
export function attachmentDisposition(filename: string): string {
  const fallback = filename.replace(/[^\x20-\x7e]/g, '_').replace(/["\\%]/g, '_');
  const encoded = encodeURIComponent(filename).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}
