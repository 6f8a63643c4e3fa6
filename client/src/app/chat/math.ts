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

function tex(text: string, displayMode: boolean): string {
  return katex.renderToString(text, { ...OPTIONS, displayMode });
}

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
  const inline = (name: string, open: string, pattern: RegExp, displayMode: boolean): TokenizerAndRendererExtension => ({
    name, level: 'inline',
    start: (src: string) => { const at = src.indexOf(open); return at === -1 ? undefined : at; },
    tokenizer(src: string): MathToken | undefined {
      const match = pattern.exec(src);
      return match?.[1]?.trim() ? { type: name, raw: match[0], text: match[1].trim(), displayMode } : undefined;
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
    inline('latexInlineDisplay', '\\[', /^\\\[([\s\S]+?)\\\]/, true),
    inline('latexInline', '\\(', /^\\\(([\s\S]+?)\\\)/, false),
  ];
}

/** The extensions that render math: $…$ and $$…$$ (marked-katex-extension), \(…\) and \[…\] (ours). */
export function mathExtensions(): MarkedExtension[] {
  return [markedKatex(OPTIONS), { extensions: latexDelimiters() }];
}
