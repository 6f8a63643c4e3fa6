import { Lexer, type MarkedOptions, type Token, type Tokens, type TokensList } from 'marked';

/**
 * Nesting marked follows before it shows the rest as text: its lexer recurses once per quote, list or emphasis
 * level, and 2,000 levels (`- - - … x`, 4,000 characters) overflowed the stack (RangeError), so the answer never
 * showed; 1,000 levels of `>` took 0.7 s to lex and draw. Answers nest a few levels.
 */
export const MAX_BLOCK_DEPTH = 16;
export const MAX_INLINE_DEPTH = 16;
/**
 * Nested calls of marked's quote rule: it reads lines that continue a nested quote by calling itself again, about
 * twice per level in `>>> a`, `>> b`, `> c` (a cap of 16 cut such text at 8 levels).
 */
export const MAX_QUOTE_CALLS = 64;
/**
 * A block's inline text is shown as plain text when (its length) × (its Markdown marks: brackets, parentheses,
 * emphasis, code and tag marks, backslashes) exceeds this. Several of marked's inline rules read to the end of the
 * text from each mark that fails to close (emphasis, strikethrough, code spans, links, the text rule's e-mail
 * look-ahead), so their cost grows with that product: 20,000 characters of `*a` took 455 ms to lex, `_a` 403 ms,
 * `~a` 411 ms. Under the bound, prose keeps its formatting: a 4,000-character paragraph whatever its marks, a
 * 20,000-character one with up to 1,000 of them.
 */
export const TANGLED_INLINE_BUDGET = 20_000_000;

/**
 * marked 16's inline link rule with the fixes of marked 17.0.4 (#3902: a title only after white space) and
 * 18.0.6 (#4013: a bare destination is not empty). Its destination could give back one character at a time and
 * try a title at each, and a title reads to its closing mark: 20,000 characters of `[a](` took 266 s to lex (cubic).
 */
// eslint-disable-next-line no-control-regex -- marked's rule: a bare destination ends at a control character.
export const LINK = /^!?\[((?:\[(?:\\[\s\S]|[^[\]\\])*\]|\\[\s\S]|`+[^`]*?`+(?!`)|[^[\]\\`])*?)\]\(\s*(<(?:\\.|[^\n<>\\])+>|[^ \t\n\x00-\x1f]+|(?=\)))(?:(?:[ \t]+(?:\n[ \t]*)?|\n[ \t]*)("(?:\\"?|[^"\\])*"|'(?:\\'?|[^'\\])*'|\((?:\\\)?|[^)\\])*\)))?\s*\)/;

const MARK = new Set(Array.from('[]()*_~`<\\', (ch) => ch.charCodeAt(0)));

function isTangled(text: string): boolean {
  if (text.length * text.length <= TANGLED_INLINE_BUDGET) return false;
  let marks = 0;
  for (let i = 0; i < text.length; i++) if (MARK.has(text.charCodeAt(i))) marks++;
  return marks * text.length > TANGLED_INLINE_BUDGET;
}

/** The text tokens made here: text shown as written, its marks and tags too (the Markdown export escapes them: markdown-export.ts). */
export const boundedPlainTexts = new WeakSet<Token>();

function plainTextToken(text: string): Tokens.Text {
  const token: Tokens.Text = { type: 'text', raw: text, text, escaped: false };
  boundedPlainTexts.add(token);
  return token;
}

/**
 * All the rest of a quote's container as one plain paragraph in a quote, for quotes nested past MAX_QUOTE_CALLS. It
 * takes all its text: marked's quote rule splices the raw text of the quote it re-reads into its own, which stays
 * whole only if that quote reads to the end.
 */
function plainQuote(src: string): Tokens.Blockquote | undefined {
  if (!/^ {0,3}>/.test(src)) return undefined;
  const text = src.replace(/^ {0,3}>[ \t]?/gm, '');
  return { type: 'blockquote', raw: src, text, tokens: [{ type: 'paragraph', raw: text, text, tokens: [plainTextToken(text)] } satisfies Tokens.Paragraph] };
}

/**
 * marked's lexer with bounds for hostile text (a model's, or a document's it was made to repeat): nesting past
 * MAX_BLOCK_DEPTH / MAX_INLINE_DEPTH and tangled inline text (TANGLED_INLINE_BUDGET) are kept as plain text, and
 * links are read with LINK. Rules and extensions are marked's and ours as configured; only what they recurse into
 * is bounded.
 */
export class BoundedLexer extends Lexer {
  /** The text the innermost block loop reads: every block rule is given the rest of it (math.ts uses this). */
  blockSource: string | undefined;
  private blockDepth = 0;
  private inlineDepth = 0;
  private quoteDepth = 0;

  constructor(options: MarkedOptions) {
    super(options);
    const tokenizer = this.options.tokenizer;
    if (tokenizer) tokenizer.rules = { ...tokenizer.rules, inline: { ...tokenizer.rules.inline, link: LINK } };
  }

  /**
   * A quote, read by marked's rule unless MAX_QUOTE_CALLS of its calls are under way. That rule reads lines that
   * continue a nested quote by calling itself one level deeper, not through blockTokens: 4,000 `>` and one more line
   * took 564 ms (quadratic), and more could overflow the stack.
   */
  quote(src: string, read: () => Tokens.Blockquote | undefined): Tokens.Blockquote | undefined {
    if (this.quoteDepth >= MAX_QUOTE_CALLS) return plainQuote(src);
    this.quoteDepth++;
    try {
      return read();
    } finally {
      this.quoteDepth--;
    }
  }

  override blockTokens(src: string, tokens?: Token[], lastParagraphClipped?: boolean): Token[];
  override blockTokens(src: string, tokens?: TokensList, lastParagraphClipped?: boolean): TokensList;
  override blockTokens(src: string, tokens: Token[] = [], lastParagraphClipped = false): Token[] {
    if (this.blockDepth >= MAX_BLOCK_DEPTH) {
      tokens.push({ type: 'paragraph', raw: src, text: src, tokens: [plainTextToken(src)] } satisfies Tokens.Paragraph);
      this.state.top = true;
      return tokens;
    }
    const outer = this.blockSource;
    this.blockSource = src;
    this.blockDepth++;
    try {
      return super.blockTokens(src, tokens, lastParagraphClipped);
    } finally {
      this.blockDepth--;
      this.blockSource = outer;
    }
  }

  override inlineTokens(src: string, tokens: Token[] = []): Token[] {
    if (this.inlineDepth >= MAX_INLINE_DEPTH || (this.inlineDepth === 0 && isTangled(src))) {
      tokens.push(plainTextToken(src));
      return tokens;
    }
    this.inlineDepth++;
    try {
      return super.inlineTokens(src, tokens);
    } finally {
      this.inlineDepth--;
    }
  }
}

/**
 * The source as plain paragraphs, split at blank lines (each token's raw is its part of the source, so a stream
 * still freezes its blocks), line breaks kept: what is shown when marked could not read it.
 */
export function plainTokens(source: string): TokensList {
  const tokens: Token[] = [];
  const gap = /\n[ \t]*\n\s*/g;
  let start = 0;
  while (start < source.length) {
    gap.lastIndex = start;
    const found = gap.exec(source);
    const end = found ? found.index : source.length;
    const next = found ? gap.lastIndex : source.length;
    const text = source.slice(start, end);
    const inline: Token[] = [];
    text.split('\n').forEach((line, i) => {
      if (i > 0) inline.push({ type: 'br', raw: '\n' } satisfies Tokens.Br);
      inline.push(plainTextToken(line));
    });
    tokens.push({ type: 'paragraph', raw: source.slice(start, next), text, tokens: inline } satisfies Tokens.Paragraph);
    start = next;
  }
  return Object.assign(tokens, { links: {} });
}
