import katex, { type KatexOptions } from 'katex';
import type { MarkedExtension, TokenizerAndRendererExtension, TokenizerExtension, TokenizerThis, Tokens } from 'marked';
import markedKatex from 'marked-katex-extension';
import { escapeHtml } from './escape-html';

// Loaded lazily (its own chunk) on the first answer that looks like it holds math (MarkdownRenderer).

/**
 * KaTeX as it may run on a model's text: no \href, \url, \htmlStyle or other trusted commands (trust off),
 * bounded sizes and macro expansion, and an error shown in place of a formula it cannot read. That error (and an
 * unknown command inside a formula) in the theme's error colour: KaTeX's own #cc0000 is 3:1 on the dark theme.
 */
const OPTIONS: KatexOptions = {
  throwOnError: false, output: 'htmlAndMathml', trust: false, strict: 'ignore', maxSize: 10, maxExpand: 500,
  errorColor: 'var(--danger)',
};

/**
 * Bounds on a formula's explicit dimensions (\kern, \hspace, \mkern, \mskip, \hskip, \raisebox, \rule, `\\[…]`,
 * \genfrac, \above…), in ems. KaTeX's maxSize caps positive sizes only: `\raisebox{-500em}{x}` made one answer
 * 10,704 px tall and `\kern{-45em}x` drew a formula far to the left, over the text beside it. Legitimate formulas
 * stay far below these (\quad is 1em, \! is -0.17em, a strut 1em or so).
 */
const MAX_DIMENSION_EM = 10;
/** Sum of the dimensions that stack up (raised boxes, rules, row gaps), and of the negative and positive kerns. */
const MAX_STACKED_EM = 30;
const MAX_NEGATIVE_KERN_EM = 10;
const MAX_KERN_EM = 100;
/** \def\arraystretch{100} made a two-row matrix 240em tall; tables use 1.2–2. */
const MAX_ARRAYSTRETCH = 4;
/**
 * A formula may be this much taller than its source is long (ems per character, after a few lines' allowance).
 * Dense legitimate TeX (matrix rows, `\\` on every line) stays under 0.6; a macro repeating rows or sizes (each
 * expansion multiplies what it writes) goes over.
 */
const MAX_HEIGHT_EM_PER_CHAR = 1;
const HEIGHT_ALLOWANCE_EM = 10;

/** While on, formulas are shown as their TeX (setMathDeferred). */
let isDeferred = false;

/**
 * Shows formulas as their TeX source until turned off: the open block of a streaming answer is rendered again on
 * every draw, and typesetting each of its formulas each time made a paragraph of many formulas cost seconds of
 * main thread. They are typeset once their block is final.
 */
export function setMathDeferred(deferred: boolean): void {
  isDeferred = deferred;
}

const typeset = new Map<string, string>();
const TYPESET_CACHE_MAX = 500;

/** Formulas shown as TeX while their block streams, typeset ahead in idle time (a few per task). */
const ahead = new Map<string, [string, boolean]>();
let isAheadScheduled = false;

function typesetAhead(): void {
  isAheadScheduled = false;
  const started = performance.now();
  for (const [key, [text, displayMode]] of ahead) {
    ahead.delete(key);
    if (!typeset.has(key)) typesetNow(key, text, displayMode);
    if (performance.now() - started > 8) break;
  }
  if (ahead.size > 0) scheduleAhead();
}

function scheduleAhead(): void {
  if (isAheadScheduled) return;
  isAheadScheduled = true;
  if (typeof requestIdleCallback === 'function') requestIdleCallback(typesetAhead, { timeout: 500 });
  else setTimeout(typesetAhead, 20);
}

function tex(text: string, displayMode: boolean): string {
  if (text.length > MATH_MAX_CHARS) return `<span class="katex-error" title="This formula is too long to typeset">${escapeHtml(text)}</span>`;
  const key = (displayMode ? 'D' : 'I') + text;
  if (isDeferred) {
    // Typeset in the background meanwhile, so the block's final render finds them done (it typeset them all in
    // one task: 300 formulas took over a second on a slow machine).
    if (!typeset.has(key) && ahead.size < TYPESET_CACHE_MAX) {
      ahead.set(key, [text, displayMode]);
      scheduleAhead();
    }
    return `<span class="math-pending">${escapeHtml(text)}</span>`;
  }
  return typeset.get(key) ?? typesetNow(key, text, displayMode);
}

function typesetNow(key: string, text: string, displayMode: boolean): string {
  let html: string;
  try {
    html = hasBoundedSizes(text, displayMode) ? katex.renderToString(text, { ...OPTIONS, displayMode }) : '';
    if (html && !isHeightBounded(html, text)) html = '';
    if (!html) html = `<span class="katex-error" title="This formula's sizes are too large to show">${escapeHtml(text)}</span>`;
  } catch {
    // Not only parse errors (those KaTeX shows itself): 3,000 nested braces overflow its parser's stack, and
    // the error escaped the whole answer's rendering, which then stopped updating.
    html = `<span class="katex-error" title="This formula could not be typeset">${escapeHtml(text)}</span>`;
  }
  if (typeset.size >= TYPESET_CACHE_MAX) typeset.delete(typeset.keys().next().value ?? '');
  typeset.set(key, html);
  return html;
}

/** KaTeX's parser: public in its bundle, not in its typings ("__" marks it as not covered by semver). */
type ParseTex = (text: string, options: KatexOptions) => unknown;
const parseTex = (katex as unknown as { __parse?: ParseTex }).__parse;

/** Ems per unit of TeX's absolute units (10pt to the em, as KaTeX counts), and of its relative ones. */
const EM_PER_UNIT: Record<string, number> = {
  pt: 0.1, mm: 7227 / 25400, cm: 7227 / 2540, in: 7.227, bp: 0.1 * 803 / 800, pc: 1.2, dd: 0.1 * 1238 / 1157,
  cc: 0.1 * 14856 / 1157, nd: 0.1 * 685 / 642, nc: 0.1 * 1370 / 107, sp: 0.1 / 65536, px: 0.1 * 803 / 800,
  em: 1, ex: 0.431, mu: 1 / 18,
};

interface Measurement {
  number: number;
  unit: string;
}

function isMeasurement(value: object): value is Measurement {
  return typeof (value as Partial<Measurement>).number === 'number' && typeof (value as Partial<Measurement>).unit === 'string';
}

/**
 * Whether every explicit dimension of the formula is within bounds (MAX_DIMENSION_EM and the sums after it). Read
 * from KaTeX's parse tree, after macro expansion, so a size spelled through \def is seen as written out. Without the
 * parser (a KaTeX that no longer has it), no formula is typeset rather than one unchecked.
 */
function hasBoundedSizes(text: string, displayMode: boolean): boolean {
  if (!parseTex) return false;
  let stacked = 0;
  let negativeKern = 0;
  let kern = 0;
  // Walked with a stack, not recursion: a parse tree can be a few thousand levels deep.
  let tree: unknown;
  try {
    tree = parseTex(text, { ...OPTIONS, displayMode });
  } catch (error) {
    // A formula KaTeX cannot read has no sizes to check: its rendering shows the error, in place.
    if (error instanceof katex.ParseError) return true;
    throw error;
  }
  const stack: [unknown, string][] = [[tree, '']];
  const seen = new Set<object>();
  while (stack.length > 0) {
    const [value, parentType] = stack.pop() ?? [null, ''];
    if (value === null || typeof value !== 'object' || seen.has(value)) continue;
    seen.add(value);
    if (isMeasurement(value)) {
      const em = value.number * (EM_PER_UNIT[value.unit] ?? 1);
      if (!(Math.abs(em) <= MAX_DIMENSION_EM)) return false;
      if (parentType !== 'kern') stacked += Math.abs(em);
      else if (em < 0) negativeKern -= em;
      else kern += em;
      if (stacked > MAX_STACKED_EM || negativeKern > MAX_NEGATIVE_KERN_EM || kern > MAX_KERN_EM) return false;
      continue;
    }
    const node = value as { type?: unknown; arraystretch?: unknown };
    if (typeof node.arraystretch === 'number' && node.arraystretch > MAX_ARRAYSTRETCH) return false;
    const type = typeof node.type === 'string' ? node.type : parentType;
    // `loc` points back into the lexer (the whole source), not into the formula's content.
    for (const [field, child] of Object.entries(value)) if (field !== 'loc') stack.push([child, type]);
  }
  return true;
}

/** Whether the typeset formula is no taller than its source allows (MAX_HEIGHT_EM_PER_CHAR); KaTeX's struts give it. */
function isHeightBounded(html: string, text: string): boolean {
  const limit = HEIGHT_ALLOWANCE_EM + MAX_HEIGHT_EM_PER_CHAR * text.length;
  for (const [, height] of html.matchAll(/class="strut" style="height:([\d.]+)em/g)) if (Number(height) > limit) return false;
  return true;
}

/** Text with TeX in it: a command, a sub- or superscript, braces or an operator. */
const TEX_LIKE = /[\\^_{}=+<>]/;

interface MathToken extends Tokens.Generic {
  text: string;
  displayMode: boolean;
}

/**
 * The longest inline formula looked for: $…$ and $$…$$ on one line, \(…\) and \[…\] inside a paragraph. Unbounded,
 * marked-katex-extension read to the end of the line from every `$`: a 30 KB line of prices ("$5 $5 …", none
 * closed) took 424 ms to lex, against under 1 ms without math.
 */
export const INLINE_MATH_MAX_CHARS = 2_000;

/**
 * The longest formula typeset; a longer one is shown as its TeX. KaTeX's time grows with the formula (5,000
 * characters of `x+` took 161 ms and wrote 770 KB of HTML; 20,000 took 622 ms), and a huge $$ block took 8.4 s in
 * the browser.
 */
export const MATH_MAX_CHARS = 5_000;

/** What may follow a formula's closing `$` (marked-katex-extension's standard rule). */
const AFTER_DOLLAR = String.raw`(?=[\s?!.,:？！。，：]|$)`;
/** marked-katex-extension's inline rule, with the formula's length bounded. */
const DOLLAR_FORMULA = String.raw`(\${1,2})(?!\$)((?:\\.|[^\\\n]){0,${INLINE_MATH_MAX_CHARS}}?(?:\\.|[^\\\n$]))\1` + AFTER_DOLLAR;
const DOLLAR_AT_START = new RegExp('^' + DOLLAR_FORMULA);
const DOLLAR_AT = new RegExp(DOLLAR_FORMULA, 'y');

/** How far a start() looks for a formula before it cuts the text (windowEnd). */
const START_WINDOW_CHARS = 256;
/**
 * Where a cut splits no word, link or address: before a character at which marked's own text rule stops anyway, or
 * after white space.
 */
const TEXT_BREAK = /[\\<![`*~_]|\s+/g;
/** A `$` that could close a formula: not escaped, and followed by what AFTER_DOLLAR allows. */
const DOLLAR_CLOSER = new RegExp(String.raw`(?<=(?:^|[^\\])(?:\\\\)*)\$` + AFTER_DOLLAR, 'g');

/**
 * Where a start() that found no formula early cuts the text: marked calls every start() on all the rest of the
 * paragraph after each token, so one that read to the end each time was quadratic on a long line cut into many
 * tokens (7 KB of "$5 *a* " took 5.2 s to lex). marked joins the text on both sides of the cut again.
 */
function windowEnd(src: string): number {
  TEXT_BREAK.lastIndex = START_WINDOW_CHARS;
  const found = TEXT_BREAK.exec(src);
  if (!found) return src.length;
  // After the white space, not in it: marked's hard-break rule reads the spaces that follow where a token starts, so
  // cuts inside a long run of spaces read it again and again (512,000 spaces took 526 ms to lex, 16 ms without math).
  return found[0].trim() === '' ? found.index + found[0].length : found.index;
}

/**
 * Where the first $…$ formula starts, as marked-katex-extension finds it (an opening `$` at the start or after a
 * space), or where the text is cut (windowEnd). An opening `$` is only tried when a `$` that could close it (one
 * followed by a space, punctuation or the end) lies within INLINE_MATH_MAX_CHARS; that search moves forward only.
 */
function dollarStart(src: string): number | undefined {
  const end = windowEnd(src);
  // Openings are looked for before the cut only: searched in all the rest, each cut read a long paragraph to its end.
  const head = src.slice(0, end);
  let closer = -1;
  let searchedTo = 0;
  for (let at = head.indexOf('$'); at !== -1;) {
    if (at === 0 || src[at - 1] === ' ') {
      if (closer <= at) {
        const to = at + INLINE_MATH_MAX_CHARS + 4;
        DOLLAR_CLOSER.lastIndex = Math.max(at + 1, searchedTo);
        // Searched in a slice, so the search stops there; one more character, to see what follows a `$` at `to`.
        const found = DOLLAR_CLOSER.exec(src.slice(0, to + 2));
        closer = found && found.index <= to ? found.index : -1;
        searchedTo = to;
      }
      DOLLAR_AT.lastIndex = at;
      if (closer > at && DOLLAR_AT.test(src)) return at;
    }
    let next = at + 1;
    while (src[next] === '$') next++;
    at = head.indexOf('$', next);
  }
  return end < src.length ? end : undefined;
}

/** marked-katex-extension's $…$ rule with the bounded scan above; its token is unchanged. */
function boundDollarRule(extension: TokenizerExtension): void {
  extension.start = dollarStart;
  extension.tokenizer = (src: string): MathToken | undefined => {
    const match = DOLLAR_AT_START.exec(src);
    return match ? { type: extension.name, raw: match[0], text: match[2].trim(), displayMode: match[1].length === 2 } : undefined;
  };
}

/**
 * Where display formulas can close in a text: each `\]` followed only by spaces on its line, and each line holding
 * only `$` or `$$` whose line break no backslash escapes (an odd run of them takes it). In increasing order.
 */
interface Closers {
  bracket: number[];
  dollar: number[];
  dollars: number[];
}

function findClosers(text: string): Closers {
  const closers: Closers = { bracket: [], dollar: [], dollars: [] };
  for (const match of text.matchAll(/\\\][ \t]*(?=\n|$)/g)) closers.bracket.push(match.index);
  for (let at = text.indexOf('\n$'); at !== -1; at = text.indexOf('\n$', at + 1)) {
    const isDouble = text[at + 2] === '$';
    const end = at + (isDouble ? 3 : 2);
    if (end < text.length && text[end] !== '\n') continue;
    let backslashes = 0;
    while (text[at - backslashes - 1] === '\\') backslashes++;
    if (backslashes % 2 === 0) (isDouble ? closers.dollars : closers.dollar).push(at);
  }
  return closers;
}

/** The first position in `sorted` at or after `from`, or -1. */
function firstFrom(sorted: number[], from: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid] < from) low = mid + 1;
    else high = mid;
  }
  return low < sorted.length ? sorted[low] : -1;
}

const closersByLexer = new WeakMap<object, Map<string, Closers>>();

/**
 * The closers of the text a block rule reads from, and where `src` starts in it. marked gives a block rule the rest
 * of the text its block loop reads (a suffix of it); MarkdownRenderer's lexer says which text that is (blockSource),
 * so each text is searched once however many blocks start in it. Searched from every opening delimiter instead, as
 * the rules' regexes did, text with many openings and no closing was quadratic: 16,000 characters of `\[` and blank
 * lines took 198 ms to lex, `$$`, `x`, `# h\` repeated (its closing line escaped) 236 ms.
 */
function closersFor(lexer: object, src: string): [Closers, number] {
  const blockSource: unknown = (lexer as { blockSource?: unknown }).blockSource;
  const offset = typeof blockSource === 'string' ? blockSource.length - src.length : -1;
  // Searched in `src` itself when the lexer does not say, or says something `src` cannot be the end of.
  const isSuffix = offset >= 0 && (src.length === 0 || (blockSource as string).charCodeAt(offset) === src.charCodeAt(0));
  if (!isSuffix) return [findClosers(src), 0];
  const text = blockSource as string;
  let bySource = closersByLexer.get(lexer);
  if (!bySource) {
    bySource = new Map();
    closersByLexer.set(lexer, bySource);
  }
  let closers = bySource.get(text);
  if (!closers) {
    closers = findClosers(text);
    bySource.set(text, closers);
  }
  return [closers, offset];
}

const LEADING_SPACE = /[ \t]*\n?/y;
const TRAILING_SPACE = /[ \t]*\n*/y;

/** A display formula in \[ … \] on lines of its own: the first `\]` followed only by spaces on its line closes it. */
function latexBlockAt(this: TokenizerThis, src: string): MathToken | undefined {
  const open = /^ {0,3}\\\[/.exec(src);
  if (!open) return undefined;
  // As the regex this replaces did: white space (and one line break) after the `\[` is taken first, then at least
  // one character of formula.
  LEADING_SPACE.lastIndex = open[0].length;
  const from = open[0].length + (LEADING_SPACE.exec(src)?.[0].length ?? 0);
  const [closers, offset] = closersFor(this.lexer, src);
  const found = firstFrom(closers.bracket, offset + from + 1);
  if (found === -1) return undefined;
  const at = found - offset;
  TRAILING_SPACE.lastIndex = at + 2;
  const end = at + 2 + (TRAILING_SPACE.exec(src)?.[0].length ?? 0);
  const text = src.slice(open[0].length, at).trim();
  return text ? { type: 'latexBlock', raw: src.slice(0, end), text, displayMode: true } : undefined;
}

/**
 * marked-katex-extension's $$ … $$ (or $ … $) block rule, with the same token: a backslash takes the next character
 * with it (a line break too), and the first line holding only the opening delimiter closes the formula.
 */
function dollarBlockAt(this: TokenizerThis, src: string): MathToken | undefined {
  const open = /^(\${1,2})\n/.exec(src);
  if (!open) return undefined;
  const delimiter = open[1];
  const from = open[0].length;
  const [closers, offset] = closersFor(this.lexer, src);
  const found = firstFrom(delimiter.length === 2 ? closers.dollars : closers.dollar, offset + from + 1);
  if (found === -1) return undefined;
  const at = found - offset;
  const end = Math.min(at + 1 + delimiter.length + 1, src.length);
  return { type: 'blockKatex', raw: src.slice(0, end), text: src.slice(from, at).trim(), displayMode: delimiter.length === 2 };
}

/**
 * Where a $$ … $$ formula on lines of its own starts inside a paragraph: a line holding only `$$` with another after
 * it. marked ends a paragraph there (a block rule's start), so "The roots are:" followed on the next lines by a
 * formula is a paragraph and the formula; read as one paragraph, the formula showed as its source, its `\\` and
 * `\{` taken as Markdown escapes. A single `$` line does not end a paragraph (dollarBlockAt still reads one that
 * starts a block). While the closing line has not streamed in, the paragraph goes on.
 */
function dollarBlockStart(this: TokenizerThis, src: string): number | undefined {
  const [closers, offset] = closersFor(this.lexer, src);
  // Each is the line break before a line holding only `$$`: the first one in `src`, and the next, which closes it.
  const opening = firstFrom(closers.dollars, offset);
  if (opening === -1 || firstFrom(closers.dollars, opening + 1) === -1) return undefined;
  return opening - offset + 1;
}

/**
 * LaTeX's own delimiters, which OpenAI's models write more often than dollars: \( inline \) and \[ display \]
 * (a block on lines of its own, or inline). Checked before marked's own rules, so the backslashes are not read as
 * escapes; code spans and blocks are matched first by marked and stay code.
 */
function latexDelimiters(): TokenizerAndRendererExtension[] {
  const inline = (name: string, [open, close]: [string, string], displayMode: boolean, isFormula: (text: string) => boolean): TokenizerAndRendererExtension => {
    const escaped = (delimiter: string): string => delimiter.replace(/[\\[\]()]/g, '\\$&');
    const pattern = new RegExp(`^${escaped(open)}([\\s\\S]{1,${INLINE_MATH_MAX_CHARS}}?)${escaped(close)}`);
    return {
      name, level: 'inline',
      // Bounded like dollarStart: an opening delimiter within the window, else a cut.
      start: (src: string) => {
        const end = windowEnd(src);
        const at = src.slice(0, end + open.length).indexOf(open);
        return at !== -1 ? at : end < src.length ? end : undefined;
      },
      tokenizer(src: string): MathToken | undefined {
        // Each opening delimiter reads at most INLINE_MATH_MAX_CHARS, and none when no closing one is that near.
        const match = src.slice(0, INLINE_MATH_MAX_CHARS + 2 * close.length).includes(close) ? pattern.exec(src) : null;
        const text = match?.[1]?.trim() ?? '';
        return match && text && isFormula(text) ? { type: name, raw: match[0], text, displayMode } : undefined;
      },
      renderer: (token) => tex((token as MathToken).text, (token as MathToken).displayMode),
    };
  };
  return [
    { name: 'latexBlock', level: 'block', tokenizer: latexBlockAt, renderer: (token) => `<p>${tex((token as MathToken).text, true)}</p>` },
    // In prose, \[1\] and \(like this\) are Markdown escapes of brackets: inline, only TeX-looking text is a formula.
    inline('latexInlineDisplay', ['\\[', '\\]'], true, (text) => TEX_LIKE.test(text)),
    inline('latexInline', ['\\(', '\\)'], false, (text) => TEX_LIKE.test(text) || /^[A-Za-z](?:_?\w)?$/.test(text)),
  ];
}

/** The extensions that render math: $…$ and $$…$$ (marked-katex-extension), \(…\) and \[…\] (ours). */
export function mathExtensions(): MarkedExtension[] {
  // marked-katex-extension's own renderers typeset with no cache or fallback: its rules are kept, its renderers
  // go through tex() as ours do.
  const dollars = markedKatex(OPTIONS);
  for (const extension of dollars.extensions ?? []) {
    if (extension.name === 'inlineKatex' && 'tokenizer' in extension) boundDollarRule(extension);
    if (extension.name === 'blockKatex' && 'tokenizer' in extension) {
      extension.tokenizer = dollarBlockAt;
      extension.start = dollarBlockStart;
    }
    if ('renderer' in extension && extension.renderer) {
      const isBlock = 'level' in extension && extension.level === 'block';
      extension.renderer = (token) => {
        const t = token as MathToken;
        const html = tex(t.text, t.displayMode);
        return isBlock ? `${html}\n` : html;
      };
    }
  }
  return [dollars, { extensions: latexDelimiters() }];
}
