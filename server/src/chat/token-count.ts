import { countTokens as count, decode, encode } from 'gpt-tokenizer';

// User text may contain strings such as "<|endoftext|>": they are plain text here, never special tokens.
const PLAIN = { disallowedSpecial: new Set<string>() };

/** Tokens of a text under o200k_base (the GPT-4o family); a close estimate for other models. */
export function countTokens(text: string): number {
  return text.length === 0 ? 0 : count(text, PLAIN);
}

/** The longest prefix of `text` that has at most `maxTokens` tokens. */
export function truncateToTokens(text: string, maxTokens: number): string {
  if (maxTokens <= 0) return '';
  // Encoding megabytes of text is slow: first cut by characters (a token is rarely over 8 of them).
  const rough = text.length > maxTokens * 8 ? text.slice(0, maxTokens * 8) : text;
  const tokens = encode(rough, PLAIN);
  return tokens.length <= maxTokens ? rough : decode(tokens.slice(0, maxTokens));
}
