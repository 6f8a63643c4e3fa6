import { signal } from '@angular/core';
import DOMPurify from 'dompurify';
import { Marked, Tokenizer, type MarkedExtension, type Token, type Tokens, type TokensList } from 'marked';
import { BoundedLexer, plainTokens } from './bounded-lexer';
import { FOOTNOTE_DEFINITION, footnoteDefinitionsFirst, footnoteExtension, settleFootnotes } from './footnotes';
import { escapeHtml, plainParagraphs } from './escape-html';
import { healOpenBlock } from './heal-markdown';

type Highlight = (code: string, language: string) => string | null;

/** One top-level Markdown block, rendered and sanitized. */
export interface MarkdownBlock {
  key: string;
  html: string;
}

const SAFE_URL = /^(?:https?:|mailto:)/i;

/**
 * A code block longer than this is shown plain first and highlighted in the background, one block per idle
 * task (once final, while streaming). A streaming answer's open block is rendered again on every draw, and
 * highlighting all of it each time made a 400-line block cost up to 135 ms a draw; opening (in the app) a
 * conversation whose 25 answers held 80-line blocks highlighted them all in one 293–437 ms task (bench
 * scenario 7, docs/performance.md).
 */
export const HIGHLIGHT_AT_ONCE_MAX_CHARS = 2_000;
/**
 * Code longer than this (about 300 lines) is never highlighted, only escaped: for a 29,000-character block,
 * highlight.js took one 62 ms task and drawing its spans another 68 ms.
 */
export const HIGHLIGHT_MAX_CHARS = 12_000;

/** What KaTeX writes: MathML for screen readers, and SVG for stretchy symbols (roots, arrows, braces). */
const MATH_TAGS = [
  'math', 'semantics', 'annotation', 'mrow', 'mi', 'mn', 'mo', 'ms', 'mtext', 'mspace', 'msup', 'msub', 'msubsup',
  'mfrac', 'msqrt', 'mroot', 'mstyle', 'mpadded', 'mphantom', 'menclose', 'mover', 'munder', 'munderover', 'mtable',
  'mtr', 'mtd', 'mlabeledtr', 'svg', 'path', 'line',
];
const ALLOWED_TAGS = [
  'a', 'blockquote', 'br', 'button', 'code', 'del', 'div', 'em', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'hr', 'li',
  'ol', 'p', 'pre', 's', 'span', 'strong', 'sup', 'sub', 'table', 'tbody', 'td', 'th', 'thead', 'tr', 'ul',
  ...MATH_TAGS,
];
/**
 * `style` is KaTeX's (sizes and positions of a formula's parts): the model's own HTML never gets this far as
 * markup (it is escaped to text), and KaTeX runs without its trusted commands (\htmlStyle, \href: math.ts).
 */
const ALLOWED_ATTR = [
  'href', 'title', 'class', 'type', 'aria-label', 'start', 'align', 'style', 'dir', 'aria-hidden', 'encoding', 'mathvariant',
  'display', 'xmlns', 'viewBox', 'preserveAspectRatio', 'd', 'width', 'height', 'x1', 'x2', 'y1', 'y2', 'stroke-width',
  'stretchy', 'fence', 'separator', 'lspace', 'rspace', 'accent', 'accentunder', 'minsize', 'maxsize', 'movablelimits',
  'columnalign', 'rowspacing', 'columnspacing', 'scriptlevel', 'displaystyle', 'linethickness', 'notation', 'voffset',
];

/**
 * Text that may hold a formula: \( or \[, $$, or $…$ with TeX inside (a backslash, ^, _ or braces), so
 * prices ("$5 and $10") do not fetch KaTeX. The text before the first TeX character excludes those characters,
 * so each `$` is read once up to the next `$` or line end: with `[^$\n]*` on both sides, a `$` and 16,000 `^`
 * with no closing `$` was read again from every `^` (quadratic: 149 ms, 2.4 s at 64,000).
 */
const MATH_HINT = /\\[([]|\$\$|\$[^$\n\\^_{}]*[\\^_{}][^$\n]*\$/;

/** Tokens as escaped text in paragraphs: what a block is shown as when it could not be rendered. */
function plainHtml(tokens: Token[]): string {
  return plainParagraphs(tokens.map((token) => token.raw).join('')).join('');
}

/** Whether a link may point there: http(s) and mailto only (anything else is shown as its text). */
export function isSafeUrl(href: string): boolean {
  // Browsers ignore control characters and whitespace inside a scheme ("java\tscript:"), so judge the cleaned form.
  const cleaned = Array.from(href).filter((ch) => ch.charCodeAt(0) > 0x20 && ch.charCodeAt(0) !== 0x7f).join('');
  return SAFE_URL.test(cleaned);
}

function languageOf(lang: string | undefined): string {
  const name = (lang ?? '').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
  return /^[a-z0-9_+#.-]{1,32}$/.test(name) ? name : '';
}

/**
 * The blocks that take the direction of their own text (dir="auto"): an Arabic or Hebrew paragraph, list item,
 * heading or table cell reads right to left, and an English one beside it left to right. Not inside a list item,
 * which sets it for what it holds: dir="auto" looks past descendants that have a dir of their own, so an item whose
 * paragraphs each had one found no text and stayed left to right (its bullet on the wrong side). Lists, quotes and
 * tables go the way of their first item (styles.css); code blocks stay left to right (dir="ltr", the code renderer).
 */
const OWN_DIRECTION = new Set(['P', 'LI', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'TD', 'TH']);

let isPurifyConfigured = false;

function configurePurify(): void {
  if (isPurifyConfigured) return;
  isPurifyConfigured = true;
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    // Only http(s) and mailto links, on any element (an SVG <a> too): checked here rather than through
    // DOMPurify's ALLOWED_URI_REGEXP, which it also applies to every other attribute's value (a list's
    // start="3", a column's align, an SVG path's d), and so dropped those.
    const href = node.getAttribute('href');
    if (href !== null && !isSafeUrl(href)) node.removeAttribute('href');
    if (node.tagName === 'A' && node.hasAttribute('href')) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
    if (node.tagName === 'BUTTON') node.setAttribute('type', 'button');
    if (OWN_DIRECTION.has(node.nodeName) && !node.hasAttribute('dir') && !node.parentElement?.closest('li')) {
      node.setAttribute('dir', 'auto');
    }
  });
}

/**
 * The one Markdown pipeline, for history and for live streams: marked → our renderer → DOMPurify.
 * Raw HTML in model output is shown as text; images never load (a remote URL could exfiltrate the chat),
 * they become a link; only http(s) and mailto links survive. A chunk of its own, with marked and DOMPurify:
 * the app reaches it through MarkdownRenderer (markdown-renderer.ts), which loads it while the app boots.
 */
export class MarkdownEngine {
  private readonly marked = new Marked({ gfm: true, breaks: false });
  private readonly cache = new Map<string, MarkdownBlock[]>();
  private highlighter: Highlight | null = null;
  private highlighterLoad: Promise<void> | null = null;
  private readonly highlighterVersion = signal(0);
  /** Blocks rendered before highlight.js arrived that hold a code block with a language, with their tokens. */
  private readonly plainTokens = new WeakMap<MarkdownBlock, Token[]>();
  /** The highlighted replacement of a plain block, once made. */
  private readonly upgraded = new WeakMap<MarkdownBlock, MarkdownBlock>();
  /** Plain blocks waiting to be highlighted (one per task), with the views to tell. */
  private readonly pending = new Map<MarkdownBlock, Set<() => void>>();
  private isDrainScheduled = false;
  /** Set while rendering a block when a code block had to be left plain. */
  private hasPlainCode = false;
  /** Set while rendering a message's blocks: long code is left plain, to be highlighted in the background. */
  private isDeferringLongCode = false;
  /** Set while rendering a streaming answer: footnotes are shown as written (footnotes.ts). */
  private isFootnoteDraft = false;
  private readonly footnotes: MarkedExtension[] = footnoteExtension(() => this.isFootnoteDraft);
  /** Bumps when syntax highlighting becomes available: views re-render their code blocks. */
  readonly version = this.highlighterVersion.asReadonly();
  private mathLoad: Promise<void> | null = null;
  /** Turns typesetting off and on (math.ts), for a streaming answer's open block. */
  private deferMath: (deferred: boolean) => void = () => undefined;
  private readonly mathLoaded = signal(0);
  /** Bumps when math rendering (KaTeX) has arrived: views render their messages again. */
  readonly mathVersion = this.mathLoaded.asReadonly();

  constructor() {
    configurePurify();
    const highlight = (code: string, language: string): string => this.highlight(code, language);
    this.marked.use(...this.footnotes);
    this.marked.use({
      tokenizer: {
        blockquote(src: string): Tokens.Blockquote | undefined {
          const lexer = this.lexer;
          const read = (): Tokens.Blockquote | undefined => Tokenizer.prototype.blockquote.call(this, src);
          return lexer instanceof BoundedLexer ? lexer.quote(src, read) : read();
        },
      },
      renderer: {
        html({ text, block }: Tokens.HTML | Tokens.Tag): string {
          return block ? `<p>${escapeHtml(text)}</p>` : escapeHtml(text);
        },
        code({ text, lang }: Tokens.Code): string {
          const language = languageOf(lang);
          const label = language ? `<span class="code-lang">${escapeHtml(language)}</span>` : '<span class="code-lang">code</span>';
          return '<div class="code-block" dir="ltr"><div class="code-head">' + label
            + '<button type="button" class="copy-code" aria-label="Copy code">Copy</button></div>'
            + `<pre><code class="hljs${language ? ' language-' + escapeHtml(language) : ''}">${highlight(text.replace(/\n$/, ''), language)}</code></pre></div>`;
        },
        link({ href, title, tokens }: Tokens.Link): string {
          const inner = this.parser.parseInline(tokens);
          if (!isSafeUrl(href)) return `<span class="unsafe-link">${inner}</span>`;
          const titleAttr = title ? ` title="${escapeHtml(title)}"` : '';
          return `<a href="${escapeHtml(href)}"${titleAttr} target="_blank" rel="noopener noreferrer">${inner}</a>`;
        },
        image({ href, text }: Tokens.Image): string {
          const alt = escapeHtml(text || 'image');
          if (!isSafeUrl(href) || href.toLowerCase().startsWith('mailto:')) {
            return `<span class="image-blocked">[image: ${alt}]</span>`;
          }
          return `<a class="image-link" href="${escapeHtml(href)}" target="_blank" rel="noopener noreferrer">[image: ${alt}]</a>`;
        },
        // An answer's headings sit under the page's (the conversation's title is its h1): `#` is an h3, `##` an
        // h4 and so on, styled by their Markdown level, so heading navigation keeps the page's structure.
        heading({ tokens, depth }: Tokens.Heading): string {
          const level = Math.min(6, depth + 2);
          return `<h${level} class="md-h${depth}">${this.parser.parseInline(tokens)}</h${level}>\n`;
        },
        checkbox({ checked }: Tokens.Checkbox): string {
          return checked ? '☑ ' : '☐ ';
        },
      },
    });
  }

  /** Resolves once highlight.js is loaded (it is fetched on the first code block). */
  whenHighlighterReady(): Promise<void> {
    this.highlighterLoad ??= import('./highlighter').then((m) => {
      this.highlighter = m.highlightCode;
      this.cache.clear();
      this.highlighterVersion.update((v) => v + 1);
    });
    return this.highlighterLoad;
  }

  /** Resolves once KaTeX is loaded and math is rendered (fetched on the first text that looks like math). */
  whenMathReady(): Promise<void> {
    this.mathLoad ??= import('./math').then((m) => {
      this.deferMath = m.setMathDeferred;
      // KaTeX's stylesheet (and through it its fonts) is a file of its own, fetched with the code that needs it.
      if (!document.querySelector('link[data-katex]')) {
        const link = document.createElement('link');
        link.rel = 'stylesheet';
        link.href = 'katex.css';
        link.dataset['katex'] = '';
        document.head.append(link);
      }
      this.marked.use(...m.mathExtensions(), footnoteDefinitionsFirst(this.footnotes));
      this.cache.clear();
      this.mathLoaded.update((v) => v + 1);
    });
    return this.mathLoad;
  }

  /** Starts loading math rendering when `text` looks like it holds a formula. */
  noticeMath(text: string): void {
    if (this.mathLoad === null && MATH_HINT.test(text)) this.whenMathReady().catch(() => undefined);
  }

  /** A whole message, one block per top-level token; cached, since history re-renders often. */
  render(source: string): MarkdownBlock[] {
    const hit = this.cache.get(source);
    if (hit) return hit;
    this.noticeMath(source);
    const blocks = this.blocksOf(this.lex(source), 0);
    if (this.cache.size > 300) this.cache.delete(this.cache.keys().next().value ?? '');
    this.cache.set(source, blocks);
    return blocks;
  }

  /**
   * The text a reader sees, without Markdown's marks: for a screen reader's announcement (it read out
   * hashes, asterisks, backticks and table pipes). Parsed in an inert document: nothing loads or runs.
   */
  plainText(source: string): string {
    const html = this.toSafeHtml(this.lex(source));
    const doc = new DOMParser().parseFromString(`<body>${html}</body>`, 'text/html');
    // A formula is read once, from its MathML (KaTeX also draws it in HTML, hidden from readers), without its TeX.
    for (const hidden of doc.querySelectorAll('.code-head, .katex-html, annotation, .footnote-back')) hidden.remove();
    // Blocks and their lines end with a line break, so words of two blocks never run together.
    for (const el of doc.querySelectorAll('p, li, h1, h2, h3, h4, h5, h6, pre, tr, blockquote, td, th')) el.append('\n');
    return (doc.body.textContent ?? '').replace(/[ \t]+\n/g, '\n').replace(/\n{2,}/g, '\n').trim();
  }

  /** Remembers the final blocks of a streamed message, so a later render of the same source reuses them. */
  remember(source: string, blocks: MarkdownBlock[]): void {
    if (this.cache.has(source)) return;
    if (this.cache.size > 300) this.cache.delete(this.cache.keys().next().value ?? '');
    this.cache.set(source, blocks);
  }

  /** The blocks of a streaming answer's open block: its formulas shown as TeX until the block is final. */
  openBlocksOf(tokens: Token[], firstIndex: number): MarkdownBlock[] {
    this.deferMath(true);
    try {
      return this.blocksOf(tokens, firstIndex, true);
    } finally {
      this.deferMath(false);
    }
  }

  /** A renderer for one growing message. */
  streaming(): StreamingMarkdown {
    return new StreamingMarkdown(this);
  }

  lex(source: string): TokensList {
    try {
      const tokens = new BoundedLexer(this.marked.defaults).lex(source);
      settleFootnotes(this.marked, tokens);
      return tokens;
    } catch {
      // The answer must show whatever it holds: a rule (marked's, an extension's) that throws, or a stack that
      // overflows despite the bounds, leaves it as plain text rather than unrendered. Settled too, which resets
      // marked-footnote's state for the next answer (it was left mid-document).
      const tokens = plainTokens(source);
      settleFootnotes(this.marked, tokens);
      return tokens;
    }
  }

  /**
   * One block per top-level token. Code over HIGHLIGHT_AT_ONCE_MAX_CHARS is left plain, and its block can be
   * queued for highlighting (queueHighlight) once it is final. `isStreamed`: footnotes are shown as written, since
   * the notes of a streaming answer come after the blocks that refer to them (StreamingMarkdown.finish).
   */
  blocksOf(tokens: Token[], firstIndex: number, isStreamed = false): MarkdownBlock[] {
    const blocks: MarkdownBlock[] = [];
    this.isDeferringLongCode = true;
    this.isFootnoteDraft = isStreamed;
    try {
      for (const token of tokens) {
        // A heading with no text (`## ` where an answer was cut off, or before its words arrive) is only a gap
        // on screen and an empty heading to a screen reader.
        if (token.type === 'space' || (token.type === 'heading' && (token as Tokens.Heading).text.trim() === '')) continue;
        this.hasPlainCode = false;
        const html = this.toSafeHtml([token]);
        // A footnote's definition is drawn with the notes, at the end.
        if (html === '') continue;
        const block = { key: 'b' + (firstIndex + blocks.length), html };
        if (this.hasPlainCode) this.plainTokens.set(block, [token]);
        blocks.push(block);
      }
    } finally {
      this.isDeferringLongCode = false;
      this.isFootnoteDraft = false;
    }
    return blocks;
  }

  /** The block as it should be shown now: its highlighted version once that has been made. */
  current(block: MarkdownBlock): MarkdownBlock {
    return this.upgraded.get(block) ?? block;
  }

  /**
   * Queues a block whose code was left plain (rendered before highlight.js arrived, or long) to be
   * highlighted, one block per task (an idle callback), so a long answer is never highlighted in one go;
   * `onDone` runs after its turn. Other blocks are ignored. A block already highlighted for another view
   * (views of the same source share their blocks) only tells `onDone`, in a microtask.
   */
  queueHighlight(block: MarkdownBlock, onDone: () => void): void {
    if (this.upgraded.has(block)) {
      queueMicrotask(onDone);
      return;
    }
    if (!this.highlighter || !this.plainTokens.has(block)) return;
    let listeners = this.pending.get(block);
    if (!listeners) {
      listeners = new Set();
      this.pending.set(block, listeners);
    }
    listeners.add(onDone);
    this.scheduleDrain();
  }

  private scheduleDrain(): void {
    if (this.isDrainScheduled || this.pending.size === 0) return;
    this.isDrainScheduled = true;
    const run = (): void => {
      this.isDrainScheduled = false;
      const next = this.pending.entries().next();
      if (!next.done) {
        const [block, listeners] = next.value;
        this.pending.delete(block);
        const tokens = this.plainTokens.get(block);
        if (tokens && !this.upgraded.has(block)) {
          this.upgraded.set(block, { key: block.key, html: this.toSafeHtml(tokens) });
          this.plainTokens.delete(block);
        }
        for (const listener of listeners) listener();
      }
      this.scheduleDrain();
    };
    if (typeof requestIdleCallback === 'function') requestIdleCallback(run, { timeout: 250 });
    else setTimeout(run, 0);
  }

  private highlight(code: string, language: string): string {
    if (!language || code.length > HIGHLIGHT_MAX_CHARS) return escapeHtml(code);
    if (!this.highlighter || (this.isDeferringLongCode && code.length > HIGHLIGHT_AT_ONCE_MAX_CHARS)) {
      // Plain now; views have the block highlighted in the background (queueHighlight) once highlight.js
      // has arrived and, for a streamed block, once the block is final.
      this.hasPlainCode = true;
      this.whenHighlighterReady().catch(() => undefined);
      return escapeHtml(code);
    }
    try {
      return this.highlighter(code, language) ?? escapeHtml(code);
    } catch {
      // A grammar bug must not lose the answer.
      return escapeHtml(code);
    }
  }

  toSafeHtml(tokens: Token[]): string {
    let html: string;
    try {
      html = this.marked.parser(tokens);
    } catch {
      // Rendering one block (a renderer, highlighting, math) failed: that block is shown as its text, the others
      // as they are.
      html = plainHtml(tokens);
    }
    return DOMPurify.sanitize(html, { ALLOWED_TAGS, ALLOWED_ATTR, ADD_ATTR: ['target', 'rel'] });
  }
}

/**
 * Renders a message while it grows: blocks before the last one are final (a later token cannot change them),
 * so each update re-parses only the open last block.
 */
export class StreamingMarkdown {
  private frozenSource = '';
  private frozen: MarkdownBlock[] = [];
  private lastContent: string | null = null;
  private lastBlocks: MarkdownBlock[] = [];
  /** A link reference or footnote definition was seen: blocks lexed apart may have missed it. */
  private hasLinkDefs = false;
  private isFinishing = false;
  private isCutShort = false;
  /** The last draw closed marks its open block had left open. */
  private wasHealed = false;

  constructor(private readonly renderer: MarkdownEngine) {}

  /**
   * The final blocks once the stream has ended: the frozen blocks as they are (same objects, so the view keeps
   * their DOM) plus the last block finished, instead of rendering the whole answer again. Falls back to the full
   * render only when blocks lexed apart could differ from it (link reference definitions).
   */
  finish(content: string, isCutShort = false): MarkdownBlock[] {
    // The last block is final now: formulas it showed as TeX are typeset (else the blocks stay as they are).
    if (this.lastBlocks.at(-1)?.html.includes('math-pending')) this.lastContent = null;
    // Cut short (stopped, interrupted, failed), the last block keeps its marks closed as they were while it streamed;
    // else it is rendered as written (the last draw closed some: rendered again).
    if (isCutShort || this.wasHealed) this.lastContent = null;
    this.isFinishing = true;
    this.isCutShort = isCutShort;
    const blocks = this.update(content);
    if (this.hasLinkDefs) return this.renderer.render(content);
    // Blocks with closed marks are not the source's own rendering: never reused for it.
    if (!isCutShort) this.renderer.remember(content, blocks);
    return blocks;
  }

  update(content: string): MarkdownBlock[] {
    if (content === this.lastContent) return this.lastBlocks;
    if (!content.startsWith(this.frozenSource)) {
      this.frozenSource = '';
      this.frozen = [];
      this.hasLinkDefs = false;
    }
    const tail = content.slice(this.frozenSource.length);
    this.renderer.noticeMath(tail);
    const lexed = this.renderer.lex(tail);
    if (Object.keys(lexed.links).length > 0 || FOOTNOTE_DEFINITION.test(tail)) this.hasLinkDefs = true;
    // The notes (footnotes.ts) are drawn once the answer is final, by the full render.
    let tokens: Token[] = lexed.filter((t) => t.type !== 'footnotes');
    let lastIndex = tokens.length - 1;
    while (lastIndex > 0 && tokens[lastIndex]?.type === 'space') lastIndex--;
    if (lastIndex > 0) {
      const done = tokens.slice(0, lastIndex);
      const raw = done.map((t) => t.raw).join('');
      // The lexer normalises some input (tabs, CRLF); freeze only when its raws are our exact prefix.
      if (tail.startsWith(raw)) {
        this.frozen = [...this.frozen, ...this.renderer.blocksOf(done, this.frozen.length, true)];
        this.frozenSource += raw;
        tokens = tokens.slice(lastIndex);
      }
    }
    const written = tokens;
    if (!this.isFinishing || this.isCutShort) tokens = this.healed(tokens);
    this.wasHealed = tokens !== written;
    const open = this.isFinishing ? this.renderer.blocksOf(tokens, this.frozen.length, true) : this.renderer.openBlocksOf(tokens, this.frozen.length);
    this.lastContent = content;
    this.lastBlocks = open.length > 0 ? [...this.frozen, ...open] : this.frozen;
    return this.lastBlocks;
  }

  /** The open block with the marks it left open closed (heal-markdown.ts), lexed again only when that changed it. */
  private healed(tokens: Token[]): Token[] {
    const raw = tokens.map((t) => t.raw).join('');
    const healed = healOpenBlock(raw);
    return healed === raw ? tokens : this.renderer.lex(healed).filter((t) => t.type !== 'footnotes');
  }
}
