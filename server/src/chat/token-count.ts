import { countTokens as count, decode, encode } from 'gpt-tokenizer';

// User text may contain strings such as "<|endoftext|>": they are plain text here, never special tokens.
const PLAIN = { disallowedSpecial: new Set<string>() };

/** Runs of non-space characters at least this long are split into slices of half of it. */
const LONG_RUN = 256;
const LONG_RUN_RE = new RegExp(`\\S{${LONG_RUN},}`, 'g');

/**
 * Cuts text into pieces the tokenizer handles in linear time. BPE is quadratic in one
 * pre-tokenized piece, and a run of letters or punctuation is one piece: 16 000 'b's took
 * 220 ms and 64 000 about 10 s on the event loop, so one hostile message or file could stall
 * every stream. Slicing long runs keeps the cost linear; the count stays within a token or two
 * per slice of the exact one (the files worker counts the same way).
 */
function* linearPieces(text: string): Generator<string> {
  let last = 0;
  for (const match of text.matchAll(LONG_RUN_RE)) {
    const start = match.index;
    if (start > last) yield text.slice(last, start);
    for (let i = 0; i < match[0].length; i += LONG_RUN / 2) yield match[0].slice(i, i + LONG_RUN / 2);
    last = start + match[0].length;
  }
  if (last < text.length) yield text.slice(last);
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
  const rough = text.length > maxTokens * 8 ? text.slice(0, maxTokens * 8) : text;
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
