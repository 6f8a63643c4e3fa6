import type { MessageRole } from './message.entity.js';
import { withoutThinking } from './think-block.js';
import { foldForSearch, withoutMarkdown } from './title.js';

/**
 * What search reads of a message: what was said. An answer's leading `<think>` block is the model's reasoning,
 * shown folded away and never sent back to it: a search for a word only the reasoning used found the conversation
 * with a snippet of text the reader could not see. A question is read as written.
 */
export function searchableText(role: MessageRole, content: string): string {
  return role === 'assistant' ? withoutThinking(content) : content;
}

/** The stored search form of a message (`search_text`): its searchable text, folded. */
export function searchTextOf(role: MessageRole, content: string): string {
  return foldForSearch(searchableText(role, content));
}

/** Characters of context shown before and after a match. */
const BEFORE = 40;
const AFTER = 80;

/** Where a search matched in a message: a line of its text around the match, and the match within it. */
export interface SearchSnippet {
  text: string;
  /** The match within `text`, in UTF-16 code units (as JavaScript strings index). */
  start: number;
  length: number;
}

/** An index moved off the second half of a surrogate pair (never a lone half in a snippet). */
function onCharacter(text: string, at: number, direction: -1 | 1): number {
  const code = text.charCodeAt(at);
  return code >= 0xdc00 && code <= 0xdfff && at > 0 ? at + (direction === 1 ? 1 : -1) : at;
}

const isMark = (ch: string): boolean => /^\p{M}$/u.test(ch);

/**
 * A snippet of `content` around the first place where `needle` (already folded by foldForSearch)
 * matches it as search compares text: any case, no accents. It reads as the answer reads, without
 * its Markdown marks; as written when the match is in them (a search for "**"). Undefined when the
 * needle is not there.
 */
export function snippetAround(content: string, needle: string): SearchSnippet | undefined {
  if (needle.length === 0) return undefined;
  return snippetIn(withoutMarkdown(content).trimEnd(), needle) ?? snippetIn(content, needle);
}

/** Folded characters between two searches for the needle while folding. */
const SEARCH_STEP = 1024;

/**
 * The snippet of `content` as it is. The text is folded one character at a time, which gives
 * foldForSearch's result (a test holds them equal) while remembering where each folded character
 * came from. Search runs this on each matched conversation's message, so it folds each distinct
 * character once, and only up to the first match: the text after it is context, read as written.
 */
function snippetIn(content: string, needle: string): SearchSnippet | undefined {
  let folded = '';
  const starts: number[] = [];
  const ends: number[] = [];
  const folds = new Map<string, string>();
  let found = -1;
  let searched = 0; // no match lies wholly in the folded text before this
  let at = 0;
  for (const ch of content) {
    let f = folds.get(ch);
    if (f === undefined) {
      f = foldForSearch(ch);
      folds.set(ch, f);
    }
    for (let k = 0; k < f.length; k++) {
      starts.push(at);
      ends.push(at + ch.length);
    }
    folded += f;
    at += ch.length;
    if (folded.length - searched >= SEARCH_STEP) {
      found = folded.indexOf(needle, Math.max(0, searched - needle.length + 1));
      if (found !== -1) break;
      searched = folded.length;
    }
  }
  if (found === -1) found = folded.indexOf(needle, Math.max(0, searched - needle.length + 1));
  if (found === -1) return undefined;
  const from = starts[found];
  let to = ends[found + needle.length - 1];
  // A match ending on a letter keeps the accents written after it (they fold to nothing).
  while (to < content.length) {
    const next = String.fromCodePoint(content.codePointAt(to)!);
    if (!isMark(next)) break;
    to += next.length;
  }
  let start = Math.max(0, from - BEFORE);
  let end = Math.min(content.length, to + AFTER);
  // Cut at a space where one is near, so words are whole.
  if (start > 0) {
    const space = content.indexOf(' ', start);
    if (space !== -1 && space < from && space - start < 15) start = space + 1;
  }
  if (end < content.length) {
    const space = content.lastIndexOf(' ', end);
    if (space > to && end - space < 15) end = space;
  }
  start = onCharacter(content, start, -1);
  end = onCharacter(content, end, 1);
  const line = (s: string): string => s.replace(/\s+/g, ' ');
  const before = line(content.slice(start, from));
  const match = line(content.slice(from, to));
  const after = line(content.slice(to, end));
  const head = start > 0 ? '…' : '';
  const text = `${head}${before}${match}${after}${end < content.length ? '…' : ''}`;
  return { text, start: head.length + before.length, length: match.length };
}
