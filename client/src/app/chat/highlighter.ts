import type { HLJSApi, Language, Mode } from 'highlight.js';
import hljs from 'highlight.js/lib/core';
import bash from 'highlight.js/lib/languages/bash';
import c from 'highlight.js/lib/languages/c';
import cpp from 'highlight.js/lib/languages/cpp';
import csharp from 'highlight.js/lib/languages/csharp';
import css from 'highlight.js/lib/languages/css';
import diff from 'highlight.js/lib/languages/diff';
import go from 'highlight.js/lib/languages/go';
import java from 'highlight.js/lib/languages/java';
import javascript from 'highlight.js/lib/languages/javascript';
import json from 'highlight.js/lib/languages/json';
import markdown from 'highlight.js/lib/languages/markdown';
import python from 'highlight.js/lib/languages/python';
import rust from 'highlight.js/lib/languages/rust';
import sql from 'highlight.js/lib/languages/sql';
import typescript from 'highlight.js/lib/languages/typescript';
import xml from 'highlight.js/lib/languages/xml';
import yaml from 'highlight.js/lib/languages/yaml';

/**
 * C#'s rule for a method declaration, `(Type\s+)+Name\s*(<[^=]+>\s*)?\(`, is tried at every position: its type
 * words repeat without bound and its generic arguments read to the next `=`, so code with many generic types and no
 * `=` or `(` was cubic: 1,200 times `List<int> ` (12,000 characters, under HIGHLIGHT_MAX_CHARS) took 18 s, `a<b> `
 * 24 s. Bounded as highlight.js bounds C++'s (MAX_FUNCTION_TYPE_TOKENS): at most 8 type words and 200 characters of
 * generic arguments, which a declaration never needs; the same 12,000 characters now take about 45 ms.
 */
function boundedCsharp(api: HLJSApi): Language {
  const language = csharp(api);
  const unbounded = /\)\+|<\[\^=\]\+>/g;
  const bounded = (begin: string): string => begin.replace(unbounded, (part) => (part === ')+' ? '){1,8}' : '<[^=]{1,200}>'));
  const declaration = language.contains.find((mode): mode is Mode => typeof mode === 'object' && mode.className === 'function');
  if (declaration && typeof declaration.begin === 'string') {
    declaration.begin = bounded(declaration.begin);
    // The rule inside it for the method's name reads generic arguments the same way.
    for (const mode of declaration.contains ?? []) {
      if (typeof mode === 'object' && typeof mode.begin === 'string' && mode.begin.includes('<[^=]+>')) mode.begin = bounded(mode.begin);
    }
  }
  return language;
}

// Loaded lazily (its own chunk) on the first code block, which keeps the initial bundle small.
// A curated set of languages; unknown ones render as plain escaped code.
const LANGUAGES = { bash, c, cpp, csharp: boundedCsharp, css, diff, go, java, javascript, json, markdown, python, rust, sql, typescript, xml, yaml };
for (const [name, language] of Object.entries(LANGUAGES)) hljs.registerLanguage(name, language);

/**
 * Code with a run of this many characters without white space is not highlighted. Every grammar tries its rules
 * at each position of a run (an identifier, a number) and most read to the run's end, so a run costs the square of
 * its length: one 12,000-character line of `$` took 1.2 s in Java, of `_` 0.75 s in Java and 0.5 s in C++. With
 * runs of at most 500 the worst measured (C and C++ identifiers, all 17 languages, 12,000 characters) was 190 ms.
 * Real code's runs are shorter; a long base64 string or minified line leaves its block plain.
 */
export const HIGHLIGHT_MAX_RUN_CHARS = 500;

function longestRun(code: string): number {
  let longest = 0;
  let run = 0;
  for (let i = 0; i < code.length; i++) {
    const ch = code.charCodeAt(i);
    run = ch === 0x20 || ch === 0x0a || ch === 0x09 || ch === 0x0d ? 0 : run + 1;
    if (run > longest) longest = run;
  }
  return longest;
}

/** Highlighted HTML (hljs escapes the text itself), or null for a language we do not know or code it is not safe to highlight. */
export function highlightCode(code: string, language: string): string | null {
  if (!language || !hljs.getLanguage(language) || longestRun(code) > HIGHLIGHT_MAX_RUN_CHARS) return null;
  return hljs.highlight(code, { language, ignoreIllegals: true }).value;
}
