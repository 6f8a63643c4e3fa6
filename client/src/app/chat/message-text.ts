/**
 * The text of a message as it is sent: blank lines before it and spaces after it go, but the first line's indentation
 * stays (an indented code line, a Markdown code block pasted as it is). `String.trim` took that too, so the first line
 * of pasted code lost its indentation and the rest kept theirs. All blank, it is ''.
 */
export function tidyMessage(text: string): string {
  return text.replace(/^(?:[^\S\r\n]*\r?\n)+/, '').trimEnd();
}

/**
 * What shows nothing (the server's rule for a blank message, conversations/title.ts): spaces, controls, bidi marks,
 * zero-width characters, joiners, variation selectors, combining marks and format characters (\p{Cf}: tag characters,
 * interlinear annotation marks) on their own.
 */
// eslint-disable-next-line no-control-regex, no-misleading-character-class -- each listed on its own, not as a sequence
const SHOWS_NOTHING = /^[\s\u0000-\u001f\u007f-\u009f\u00ad\u034f\u061c\u115f\u1160\u180e\u200b-\u200f\u202a-\u202e\u2060-\u206f\u2800\u3164\ufe00-\ufe0f\ufeff\uffa0\p{M}\p{Cf}]*$/u;
/** The format characters that draw a sign (prepended concatenation marks: U+0600 Arabic number sign, U+06DD end of ayah). */
const DRAWS_A_SIGN = /[\u0600-\u0605\u06dd\u070f\u0890\u0891\u08e2\u{110bd}\u{110cd}]/u;

/** Whether a message shows nothing, so that Send is off as the server would refuse it (`trim` saw zero-width spaces as text). */
export function isBlankMessage(text: string): boolean {
  return !/[!-~]/.test(text) && SHOWS_NOTHING.test(text) && !DRAWS_A_SIGN.test(text);
}
