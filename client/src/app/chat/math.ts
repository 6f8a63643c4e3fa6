import katex, { type KatexOptions } from 'katex';
import type { MarkedExtension, TokenizerAndRendererExtension, Tokens } from 'marked';
import markedKatex from 'marked-katex-extension';

// Loaded lazily (its own chunk) on the first answer that looks like it holds math (MarkdownRenderer).

/**
 * KaTeX as it may run on a model's text: no \href, \url, \htmlStyle or other trusted commands (trust off),
 * bounded sizes and macro expansion, and an error shown in place of a formula it cannot read.
 */
const OPTIONS: KatexOptions = {
  throwOnError: false, output: 'htmlAndMathml', trust: false, strict: 'ignore', maxSize: 20, maxExpand: 500,
};

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

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

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
    html = katex.renderToString(text, { ...OPTIONS, displayMode });
  } catch {
    // Not only parse errors (those KaTeX shows itself): 3,000 nested braces overflow its parser's stack, and
    // the error escaped the whole answer's rendering, which then stopped updating.
    html = `<span class="katex-error" title="This formula could not be typeset">${escapeHtml(text)}</span>`;
  }
  if (typeset.size >= TYPESET_CACHE_MAX) typeset.delete(typeset.keys().next().value ?? '');
  typeset.set(key, html);
  return html;
}

/** Text with TeX in it: a command, a sub- or superscript, braces or an operator. */
const TEX_LIKE = /[\\^_{}=+<>]/;

interface MathToken extends Tokens.Generic {
  text: string;
  displayMode: boolean;
}

/**
 * LaTeX's own delimiters, which OpenAI's models write more often than dollars: \( inline \) and \[ display \]
 * (a block on lines of its own, or inline). Checked before marked's own rules, so the backslashes are not read as
 * escapes; code spans and blocks are matched first by marked and stay code.
 */
function latexDelimiters(): TokenizerAndRendererExtension[] {
  const inline = (name: string, open: string, pattern: RegExp, displayMode: boolean, isFormula: (text: string) => boolean): TokenizerAndRendererExtension => ({
    name, level: 'inline',
    start: (src: string) => { const at = src.indexOf(open); return at === -1 ? undefined : at; },
    tokenizer(src: string): MathToken | undefined {
      const match = pattern.exec(src);
      const text = match?.[1]?.trim() ?? '';
      return match && text && isFormula(text) ? { type: name, raw: match[0], text, displayMode } : undefined;
    },
    renderer: (token) => tex((token as MathToken).text, (token as MathToken).displayMode),
  });
  return [
    {
      name: 'latexBlock', level: 'block',
      tokenizer(src: string): MathToken | undefined {
        const match = /^ {0,3}\\\[[ \t]*\n?([\s\S]+?)\n?[ \t]*\\\][ \t]*(?:\n+|$)/.exec(src);
        return match?.[1]?.trim() ? { type: 'latexBlock', raw: match[0], text: match[1].trim(), displayMode: true } : undefined;
      },
      renderer: (token) => `<p>${tex((token as MathToken).text, true)}</p>`,
    },
    // In prose, \[1\] and \(like this\) are Markdown escapes of brackets: inline, only TeX-looking text is a formula.
    inline('latexInlineDisplay', '\\[', /^\\\[([\s\S]+?)\\\]/, true, (text) => TEX_LIKE.test(text)),
    inline('latexInline', '\\(', /^\\\(([\s\S]+?)\\\)/, false, (text) => TEX_LIKE.test(text) || /^[A-Za-z](?:_?\w)?$/.test(text)),
  ];
}

/** The extensions that render math: $…$ and $$…$$ (marked-katex-extension), \(…\) and \[…\] (ours). */
export function mathExtensions(): MarkedExtension[] {
  // marked-katex-extension's own renderers typeset with no cache or fallback: its rules are kept, its renderers
  // go through tex() as ours do.
  const dollars = markedKatex(OPTIONS);
  for (const extension of dollars.extensions ?? []) {
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
