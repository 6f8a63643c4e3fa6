import remend, { type RemendOptions } from 'remend';

/**
 * Only what closes a mark the model has opened and not yet closed (bold, italics, strikethrough, a code span) or
 * finishes a link or image still being written. The rest of remend's changes are off, so the words read the same
 * before and after the answer ends: its single-tilde and `>` escapes and its stripping of an unfinished tag change
 * what a finished answer shows too, and formulas wait as TeX until their block is final (math.ts).
 */
const OPTIONS: RemendOptions = {
  linkMode: 'text-only', katex: false, inlineKatex: false, singleTilde: false, comparisonOperators: false, htmlTags: false,
};

/**
 * The open (last) block of an answer that is still being written, or that ended before the model finished (stopped,
 * interrupted, failed), with its unclosed inline marks closed: `**Offline demo mode: no language` shows in bold rather
 * than behind two literal asterisks, and a half-written link as its words. Markdown's inline marks never cross a
 * block, so only that block needs it; the blocks before it are left as they are.
 */
export function healOpenBlock(source: string): string {
  return remend(source, OPTIONS);
}
