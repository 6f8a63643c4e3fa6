// Deterministic reply texts the loopback upstream streams, split into tokens.

const WORDS = ('the quick relay streams every token to the browser while the database keeps a copy ' +
  'of each answer so a closed tab loses nothing and a returning reader sees the same words').split(' ');

/** n plain-word tokens (" word"), about 5 characters each. */
export function plainTokens(n) {
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = (i === 0 ? '' : ' ') + WORDS[i % WORDS.length];
  return out;
}

/**
 * About n tokens of Markdown with headings, lists, emphasis, inline code and fenced code blocks,
 * the worst realistic case for an incremental Markdown renderer with syntax highlighting.
 */
export function markdownTokens(n) {
  const blocks = [];
  let k = 0;
  while (tokenize(blocks.join('')).length < n) {
    k++;
    blocks.push(
      `## Step ${k}: wiring the relay\n\n`,
      `The **relay** forwards each token at once and keeps a *copy* for the database; see \`flush()\` in part ${k}.\n\n`,
      `- first, open the upstream stream\n- then, forward token ${k} to every listener\n- finally, store the answer\n\n`,
      '```ts\n',
      `export async function relay${k}(source: AsyncIterable<string>, sink: (t: string) => void): Promise<number> {\n`,
      '  let count = 0;\n',
      '  for await (const token of source) {\n',
      `    sink(token); // step ${k}\n`,
      '    count += 1;\n',
      '  }\n',
      '  return count;\n',
      '}\n',
      '```\n\n',
      `> Note ${k}: a slow consumer must never stall the others.\n\n`,
    );
  }
  return tokenize(blocks.join('')).slice(0, n);
}

/**
 * About n tokens of one long fenced TypeScript block after a short intro: an answer that is mostly
 * a whole file of code, whose open block grows for the whole stream.
 */
export function codeTokens(n) {
  const lines = ['Here is the whole module:\n\n', '```ts\n'];
  let k = 0;
  while (tokenize(lines.join('')).length < n) {
    k++;
    lines.push(`export async function relay${k}(source: AsyncIterable<string>, sink: (t: string) => void): Promise<number> { // part ${k}\n`,
      `  let count = ${k}; for await (const token of source) { sink(token); count += 1; } return count;\n`, '}\n');
  }
  return tokenize(lines.join('')).slice(0, n);
}

/** An answer that is mostly a fenced TypeScript block of `lines` lines (about 70 characters each). */
export function codeAnswer(lines, answer = 0) {
  // Each answer's code differs (`answer`): the SPA renders a code block once per distinct text and shares it, so
  // answers that repeat one block arrive highlighted as soon as one of them was, which real answers never do.
  const body = Array.from({ length: lines }, (_, i) => `  const value${i} = await relay(source${i % 7}, (token) => sink.push(token)); // line ${i} of ${answer}`);
  return `Here is the module:\n\n\`\`\`ts\n${body.join('\n')}\n\`\`\`\n\nIt keeps every token.`;
}

/** Splits text into word-ish tokens keeping whitespace attached, like a BPE tokenizer roughly does. */
function tokenize(text) {
  return text.match(/\s*[^\s]{1,6}|\s+/g) ?? [];
}
