import type { Marked, MarkedExtension, Token, Tokens, TokenizerExtension, TokenizerThis } from 'marked';
import markedFootnote, { type Footnote, type FootnoteRef, type Footnotes } from 'marked-footnote';
import { escapeHtml } from './escape-html';

/**
 * GFM footnotes (`text[^1]` … `[^1]: note`), read by marked-footnote and drawn by our renderers: a number in the
 * text and the notes at the end of the answer, joined by buttons that MarkdownView follows within its own message.
 * No ids and no `#` links: several answers on one page cannot collide, a model's label (`constructor`, `location`)
 * never becomes an id or a name (DOM clobbering), and following a note does not touch the URL.
 */

/** The longest footnote label read (marked-footnote's own rule has no bound). */
const FOOTNOTE_LABEL_MAX_CHARS = 200;
/** A reference, as GFM reads one: its label holds no bracket. */
const FOOTNOTE_REF = new RegExp(`^\\[\\^[^[\\]\\n]{1,${FOOTNOTE_LABEL_MAX_CHARS}}\\]`);

/** A footnote definition at the start of a line (in a quote or list too): the answer needs its full render. */
export const FOOTNOTE_DEFINITION = /^[ \t>]*\[\^[^\]\n]+\]:/m;

/**
 * The extension, with `isDraft` telling when footnotes are shown as their Markdown (a streaming answer: its notes
 * come last, after the blocks that refer to them were rendered).
 */
export function footnoteExtension(isDraft: () => boolean): MarkedExtension[] {
  const library = markedFootnote({ description: 'Footnotes' });
  for (const extension of library.extensions ?? []) {
    // It finds the notes through the document's first token; when another block rule (math) took the first block,
    // that is not its notes, and it threw on every reference. And its rule reads a label to the end of the line from
    // every `[^` (20,000 characters of `[^` took 151 ms to lex, quadratic): a label is looked for only when a note
    // was defined, up to a bracket or FOOTNOTE_LABEL_MAX_CHARS.
    if (extension.name === 'footnoteRef' && 'tokenizer' in extension) {
      const tokenize = extension.tokenizer;
      extension.tokenizer = function (this: TokenizerThis, src, tokens) {
        const notes = this.lexer.tokens[0];
        if (notes?.type !== 'footnotes' || (notes as unknown as Footnotes).rawItems.length === 0) return undefined;
        return FOOTNOTE_REF.test(src) ? tokenize.call(this, src, tokens) : undefined;
      };
    }
  }
  const renderers: MarkedExtension = {
    extensions: [
      {
        name: 'footnoteRef',
        renderer: (token) => {
          const ref = token as unknown as FootnoteRef;
          if (isDraft()) return escapeHtml(ref.raw);
          const n = escapeHtml(ref.id);
          return `<sup class="footnote-ref"><button type="button" data-footnote-ref="${n}" aria-label="Footnote ${n}">${n}</button></sup>`;
        },
      },
      {
        name: 'footnote',
        renderer(token) {
          if (!isDraft()) return '';
          // Shown as written while the answer streams (what it looked like before footnotes were read).
          const note = token as unknown as Footnote;
          const label = escapeHtml(`[^${note.label}]: `);
          const html = this.parser.parse(note.content);
          return html.startsWith('<p>') ? `<p>${label}${html.slice(3)}` : `<p>${label}</p>${html}`;
        },
      },
      {
        name: 'footnotes',
        renderer(token) {
          const { items } = token as unknown as Footnotes;
          if (isDraft() || items.length === 0) return '';
          const notes = items.map((item, i) => {
            const back = `<button type="button" class="footnote-back" data-footnote-back="${i + 1}" aria-label="Back to reference ${i + 1}">↩&#xFE0E;</button>`;
            const html = this.parser.parse(item.content).trimEnd();
            const body = html.endsWith('</p>') ? `${html.slice(0, -4)} ${back}</p>` : `${html}${back}`;
            return `<li data-footnote="${i + 1}">${body}</li>`;
          });
          return `<div class="footnotes"><ol aria-label="Footnotes">${notes.join('')}</ol></div>`;
        },
      },
    ],
  };
  return [library, renderers];
}

/**
 * The footnote definitions rule, registered again after rules added later (math): marked tries the newest block
 * rules first, and the extension must see a document's first block to attach its notes to it.
 */
export function footnoteDefinitionsFirst(extensions: MarkedExtension[]): MarkedExtension {
  const definitions = extensions.flatMap((e) => e.extensions ?? []).find((e): e is TokenizerExtension => e.name === 'footnote' && 'tokenizer' in e);
  return { extensions: definitions ? [{ name: definitions.name, level: definitions.level, tokenizer: definitions.tokenizer }] : [] };
}

/**
 * Calls `visit` on every token, parents before children, in the order of marked's walkTokens, which it replaces:
 * that one concatenates its results into a new array at every token (quadratic in the tokens: 5 s for an answer of
 * 8,000 paragraphs, against 49 ms to lex it) and recurses (a deep document overflowed the stack). A list's length is
 * read as it is walked, as marked's does, so a token appended by `visit` is visited too.
 */
function walkTokens(marked: Marked, tokens: Token[], visit: (token: Token) => void): void {
  const childTokens = marked.defaults.extensions?.childTokens ?? {};
  const stack: [Token[], number][] = [[tokens, 0]];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1];
    const [list, index] = frame;
    if (index >= list.length) {
      stack.pop();
      continue;
    }
    frame[1] = index + 1;
    const token = list[index];
    visit(token);
    // Children pushed last are walked first: push them in reverse, as marked walks them in order.
    const children: Token[][] = [];
    if (token.type === 'table') {
      const table = token as Tokens.Table;
      for (const cell of table.header) children.push(cell.tokens);
      for (const row of table.rows) for (const cell of row) children.push(cell.tokens);
    } else if (token.type === 'list') {
      children.push((token as Tokens.List).items);
    } else if (childTokens[token.type]) {
      const generic = token as Tokens.Generic;
      for (const name of childTokens[token.type]) {
        const child: unknown = generic[name];
        if (Array.isArray(child)) children.push(child.flat(Infinity) as Token[]);
      }
    } else if ('tokens' in token && token.tokens) {
      children.push(token.tokens);
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push([children[i], 0]);
  }
}

/**
 * What marked.parse() does after lexing and marked.lexer() does not: runs marked-footnote's walkTokens (which
 * resets its state for the next document and moves the notes after the text). Then numbers the references in
 * order and keeps a copy of the notes token (the extension reuses one for every document), or drops it when no
 * note is referred to.
 */
export function settleFootnotes(marked: Marked, tokens: Token[]): void {
  const walk = marked.defaults.walkTokens;
  // Its walkTokens returns nothing: no promise to wait for (marked runs without `async`).
  if (walk) walkTokens(marked, tokens, (token) => void walk.call(marked, token));
  const at = tokens.findIndex((t) => t.type === 'footnotes');
  if (at === -1) return;
  const section = tokens[at] as unknown as Footnotes;
  tokens.splice(at, 1);
  if (section.items.length === 0) return;
  section.items.forEach((item, i) => {
    for (const ref of item.refs) ref.id = String(i + 1);
  });
  tokens.push({ ...section, items: [...section.items] });
}
