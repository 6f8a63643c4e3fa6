import { countTokens as count, decode, encode } from 'gpt-tokenizer';

// User text may contain strings such as "<|endoftext|>": they are plain text here, never special tokens.
const PLAIN = { disallowedSpecial: new Set<string>() };

/** Stretches of text at least this long without a cut point (see CUT_POINT) are split into slices of half of it. */
const LONG_RUN = 256;

/**
 * Where o200k's pre-tokenizer always starts a new piece, so text cut there counts exactly as a whole: before a
 * space (any but CR and LF) followed by a non-space ("word| next": a run of spaces leaves its last one to the
 * next word), and after a line break followed by a non-space ("line\n|next"). Not after a line break before
 * "/", nor before one: punctuation takes [\r\n/]* after it ("!\n/" is one piece).
 */
const CUT_POINT = /(?=[^\S\r\n]\S)|(?<=[\r\n])(?=[^\s/])/g;

/** Whether a cut at `at` would split a surrogate pair: a lone half counts (and decodes) as U+FFFD. */
function splitsPair(text: string, at: number): boolean {
  const code = text.charCodeAt(at - 1);
  return code >= 0xd800 && code <= 0xdbff;
}

/** Slices of `text` from `from` to `to` of at most LONG_RUN / 2 characters, never splitting a surrogate pair. */
function* slices(text: string, from: number, to: number): Generator<string> {
  while (from < to) {
    let end = Math.min(to, from + LONG_RUN / 2);
    if (end < to && splitsPair(text, end)) end -= 1;
    yield text.slice(from, end);
    from = end;
  }
}

/**
 * Cuts text into pieces the tokenizer handles in linear time. BPE is quadratic in one pre-tokenized piece, and
 * a piece can be any length: a run of letters or punctuation, of spaces (U+3000, NBSP, newlines: "x" + 32,000
 * U+3000 + "x" took 6 s), or "/\n" repeated (punctuation takes [\r\n/]* after it). One hostile message or file
 * could stall every stream. Text between two cut points is the most one piece can span, so a stretch of
 * LONG_RUN or more without one is counted in slices: the cost stays linear whatever the characters, the count
 * within a token or two per slice of the exact one, and text with a cut point at least every LONG_RUN
 * characters (prose, code, tables, CSV) counts exactly. The files worker (extract.worker.mjs) has a copy of
 * this code: it is plain JavaScript run as its own process and cannot import this file.
 */
function* linearPieces(text: string): Generator<string> {
  let last = 0; // the end of what has been yielded
  let stretch = 0; // the start of the stretch since the last cut point
  for (const end of cutPoints(text)) {
    if (end - stretch >= LONG_RUN) {
      if (stretch > last) yield text.slice(last, stretch);
      yield* slices(text, stretch, end);
      last = end;
    }
    stretch = end;
  }
  if (last < text.length) yield text.slice(last);
}

/** The cut points of `text`, then its end. */
function* cutPoints(text: string): Generator<number> {
  for (const match of text.matchAll(CUT_POINT)) yield match.index;
  yield text.length;
}

/** Tokens of a text under o200k_base (the GPT-4o family); a close estimate for other models. */
export function countTokens(text: string): number {
  let total = 0;
  for (const piece of linearPieces(text)) total += count(piece, PLAIN);
  return total;
}

/** The longest prefix of `text` (up to piece boundaries) that has at most `maxTokens` tokens. */
export function truncateToTokens(text: string, maxTokens: number): string {
  if (maxTokens <= 0) return '';
  // Encoding megabytes of text is slow: first cut by characters (a token is rarely over 8 of them).
  const end = maxTokens * 8;
  const rough = text.length > end ? text.slice(0, splitsPair(text, end) ? end - 1 : end) : text;
  let kept = '';
  let left = maxTokens;
  for (const piece of linearPieces(rough)) {
    const tokens = encode(piece, PLAIN);
    if (tokens.length > left) return kept + decode(tokens.slice(0, left));
    kept += piece;
    left -= tokens.length;
  }
  return kept;
}
