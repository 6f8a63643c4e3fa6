import { Marked, type Token, type Tokens } from 'marked';
import type { Footnote, FootnoteRef } from 'marked-footnote';
import type { Conversation, Message } from '../core/api-models';
import { BoundedLexer, boundedPlainTexts } from './bounded-lexer';
import { shownMessages } from './conversation-export';
import { footnoteExtension, settleFootnotes } from './footnotes';
import { isSafeUrl } from './markdown-engine';
import { answerNotice, contextNoticeText } from './answer-notices';
import { failureText } from './failure-texts';

const STATUS_NOTES: Partial<Record<Message['status'], string>> = {
  streaming: 'still being written when exported',
  stopped: 'stopped',
  interrupted: 'interrupted',
  failed: 'failed',
};

/** A Markdown document of the conversation: its title, then each message under who wrote it. */
export function toMarkdown(conversation: Conversation, messages: readonly Message[], exportedAt: Date): string {
  const title = conversation.title?.trim() || 'Conversation';
  const parts = [`# ${escapeHeading(title)}`, `_Exported from Parley on ${exportedAt.toISOString()}._`];
  for (const m of shownMessages(messages)) {
    const who = m.role === 'user' ? 'You' : m.role === 'assistant' ? `Assistant${m.model_name ? ` (${m.model_name})` : ''}` : 'System';
    const note = STATUS_NOTES[m.status];
    parts.push(`## ${escapeHeading(who)}${note ? ` _(${note})_` : ''}`);
    if (m.files.length > 0) parts.push(`Attached: ${m.files.map((f) => asCode(f.filename)).join(', ')}`);
    const body = m.content.trim();
    // Over an answer, the files the model did not see: the notice's own words are plain, a file's name is its writer's text, as code.
    const context = m.role === 'assistant' ? contextNoticeText(m.context, (name) => asCode(name.replace(/\s+/g, ' '))) : null;
    if (context) parts.push(`> ${context}`);
    // The user's words as typed (the app shows them as text, not Markdown); an answer as the app shows it
    // (answerAsShown), kept from leaking into what follows (a stopped answer ends inside its code block).
    if (body) parts.push(m.role === 'user' ? asTyped(m.content) : closeOpenFence(answerAsShown(body, `m${m.position}-`)));
    else if (m.role === 'assistant') parts.push('_(no text)_');
    // What the app says under the answer: why it failed, or that it is not the whole answer.
    const ending = m.role !== 'assistant' ? null
      : m.status === 'failed' || m.status === 'interrupted' ? failureText(m.error_code, m.status, m.finish_reason) : answerNotice(m);
    if (ending) parts.push(`> ${escapeInline(ending)}`);
  }
  return `${parts.join('\n\n')}\n`;
}

/** A fence no run of backticks in `text` can close. */
function fenceFor(text: string): string {
  let longest = 0;
  for (const run of text.match(/`+/g) ?? []) longest = Math.max(longest, run.length);
  return '`'.repeat(Math.max(3, longest + 1));
}

/** Text as typed, in a code block of its own: headings, lists or fences in it stay text. */
function asTyped(text: string): string {
  const fence = fenceFor(text);
  // Not /\n+$/: tried from every newline of a run that text follows, it is quadratic in the run.
  let end = text.length;
  while (end > 0 && text.charCodeAt(end - 1) === 10) end--;
  return `${fence}text\n${text.slice(0, end)}\n${fence}`;
}

/** The export's reading of an answer: the app's (GFM and its footnotes), so what is rewritten is what was shown. */
let exportMarked: Marked | undefined;

/**
 * An answer's Markdown as the app shows it, safe to open in a Markdown previewer that renders raw HTML:
 * - its headings two levels down (at most h6), as on screen: the document's level-2 headings are its messages,
 *   and an answer's own `## You` (a model can be made to write one, by a prompt hidden in an attached file, say)
 *   cannot pass for the next question. Only the answer's top level: headings in code, quotes or lists stay.
 * - its raw HTML (blocks and inline tags) as text, as the app shows it: written as live HTML, a previewer ran
 *   `<script>`, `<img onerror>` and `<iframe>`.
 * - links to anything but http(s) and mailto (`javascript:`, `vbscript:`, `data:`, inline, autolinked or through a
 *   reference definition) as their text, as the app shows them; the unsafe definitions left out (never shown).
 * - images as the link the app shows (`[\[image: alt\]](url)`), never loaded: a remote image is a request that can
 *   carry the conversation away; an unsafe one as its text.
 * - its footnote labels numbered anew, prefixed with `labelPrefix` (`[^m3-1]`): every answer numbers its notes from 1,
 *   and two answers' `[^1]` in one document were one note; and a label is the model's text, which a previewer
 *   rendering raw HTML took for HTML (`[^<img src=x onerror=…>]`).
 * Everything else is kept as written. Text the rewrite cannot place goes in as typed (in a code block).
 */
export function answerAsShown(markdown: string, labelPrefix = ''): string {
  const source = markdown.replace(/\r\n?/g, '\n');
  let tokens: Token[];
  try {
    // Bounded as for display (bounded-lexer.ts): marked alone overflowed the stack on deep nesting and read some
    // link-like text in cubic time.
    exportMarked ??= new Marked({ gfm: true }).use(...footnoteExtension(() => false));
    tokens = new BoundedLexer(exportMarked.defaults).lex(source);
    settleFootnotes(exportMarked, tokens);
  } catch {
    return asTyped(source);
  }
  const out: string[] = [];
  const labels = new FootnoteLabels(labelPrefix);
  for (const token of tokens) {
    // The notes' section: its notes are tokens of their own, where they were written.
    if (token.type === 'footnotes') continue;
    const rewritten = token.type === 'heading' ? shownHeading(token as Tokens.Heading, labels) : new AnswerRewrite(token.raw, labels).apply([token]);
    if (rewritten === null) return asTyped(source);
    out.push(rewritten);
  }
  return out.join('');
}

/** A top-level heading two levels down, on one line (a setext heading becomes an ATX one). */
function shownHeading(heading: Tokens.Heading, labels: FootnoteLabels): string | null {
  const text = new AnswerRewrite(heading.text, labels).apply(heading.tokens);
  if (text === null) return null;
  return `${'#'.repeat(Math.min(6, heading.depth + 2))} ${text.replace(/\s*\n\s*/g, ' ')}${/\n*$/.exec(heading.raw)?.[0] ?? ''}`;
}

/** An answer's footnote labels as exported: `prefix` and a number, the same for a note and its references. */
class FootnoteLabels {
  private readonly numbers = new Map<string, number>();

  constructor(private readonly prefix: string) {}

  /** The label written for `label` (matched as Markdown matches them: any case, runs of spaces as one). */
  of(label: string): string {
    const key = label.trim().toLowerCase().replace(/\s+/g, ' ');
    let n = this.numbers.get(key);
    if (n === undefined) {
      n = this.numbers.size + 1;
      this.numbers.set(key, n);
    }
    return `${this.prefix}${n}`;
  }
}

/** Why an answer could not be rewritten (its tokens could not be placed in its text): it is exported as typed. */
class Unplaced extends Error {}

interface Span {
  start: number;
  end: number;
  /** Each non-blank line of the token, trimmed, where it is in the text. */
  lines: { start: number; end: number }[];
}

/** What an html line may start with that Markdown reads as a block once the line is no longer HTML. */
const BLOCK_MARK = /^(?:[#>+*=_`~|:-]|\d{1,9}(?=[.)]))/;

/**
 * Edits to a text, found by walking its tokens in order. marked's tokens say what they are but not where: each is
 * looked for (line by line, since a quote's or a list's children have lost their `>` and indentation) after the one
 * before, and within its parent's place, so a link's title or a code span holding the same text is not mistaken
 * for it.
 */
class AnswerRewrite {
  private readonly edits: { start: number; end: number; text: string }[] = [];
  private cursor = 0;
  private bound: number;

  constructor(private readonly source: string, private readonly labels: FootnoteLabels) {
    this.bound = source.length;
  }

  /** The text with the edits made, or null when a token could not be placed. */
  apply(tokens: readonly Token[]): string | null {
    try {
      this.walk(tokens, false);
    } catch (error) {
      if (error instanceof Unplaced) return null;
      throw error;
    }
    const edits = [...this.edits].sort((a, b) => a.start - b.start || a.end - b.end);
    let out = '';
    let at = 0;
    for (const edit of edits) {
      if (edit.start < at) return null;
      out += this.source.slice(at, edit.start) + edit.text;
      at = edit.end;
    }
    return out + this.source.slice(at);
  }

  private walk(tokens: readonly Token[], isInUnsafeLink: boolean): Span[] {
    const spans: Span[] = [];
    for (const token of tokens) {
      if (token.type === 'footnotes') continue;
      const span = this.locate(token.raw);
      if (!span) continue;
      spans.push(span);
      const outerBound = this.bound;
      this.cursor = span.start;
      this.bound = span.end;
      this.rewrite(token, span, isInUnsafeLink);
      this.bound = outerBound;
      this.cursor = span.end;
    }
    return spans;
  }

  private rewrite(token: Token, span: Span, isInUnsafeLink: boolean): void {
    switch (token.type) {
      case 'html':
        this.escapeHtml(span);
        return;
      case 'link': {
        const link = token as Tokens.Link;
        if (isSafeUrl(link.href)) {
          this.walk(link.tokens, isInUnsafeLink);
          return;
        }
        // Its text without the link around it; brackets in that text escaped, so no link is made of them.
        const text = this.walk(link.tokens, true);
        if (text.length === 0) {
          this.edit(span.start, span.end, '');
          return;
        }
        this.edit(span.start, text[0].start, '');
        this.edit(text[text.length - 1].end, span.end, '');
        return;
      }
      case 'image': {
        const image = token as Tokens.Image;
        const label = `\\[image: ${escapeMarkdown(image.text || 'image')}\\]`;
        const isShownAsLink = isSafeUrl(image.href) && !/^mailto:/i.test(image.href.trim());
        this.edit(span.start, span.end, isShownAsLink ? `[${label}](<${image.href.replace(/[\\<>]/g, '\\$&')}>)` : label);
        return;
      }
      case 'def':
        if (!isSafeUrl((token as Tokens.Def).href)) this.edit(span.start, span.end, '');
        return;
      case 'footnoteRef':
        this.relabel(span.start, (token as unknown as FootnoteRef).label);
        return;
      case 'footnote': {
        const note = token as unknown as Footnote;
        const label = this.relabel(span.start, note.label);
        // A note that is one unsafe address reads, to a previewer without footnotes, as a link definition that
        // makes its references links there: a zero-width space first spoils the address, not the note.
        const content = /^:[ \t]*/.exec(this.source.slice(span.start + `[^${note.label}]`.length));
        const at = span.start + `[^${note.label}]`.length + (content?.[0].length ?? 0);
        if (isUnsafeDefinition(`${label}: ${/^[^\n]*/.exec(this.source.slice(at))?.[0] ?? ''}`)) this.insert(at, '&#8203;');
        this.walk(note.content, isInUnsafeLink);
        return;
      }
      case 'text':
        if ('tokens' in token && token.tokens) this.walk(token.tokens, isInUnsafeLink);
        else if (boundedPlainTexts.has(token)) {
          // Text the lexer's bounds left unread, which the app shows as written: tags and marks too.
          for (const line of span.lines) {
            for (let at = line.start; at < line.end; at++) if (MARKDOWN_PUNCTUATION.test(this.source[at])) this.insert(at, '\\');
          }
        } else if (isInUnsafeLink) {
          for (const line of span.lines) {
            for (let at = line.start; at < line.end; at++) if (this.source[at] === '[' || this.source[at] === ']') this.insert(at, '\\');
          }
        }
        return;
      case 'list':
        this.walk((token as Tokens.List).items, isInUnsafeLink);
        return;
      case 'table': {
        const table = token as Tokens.Table;
        for (const cell of [...table.header, ...table.rows.flat()]) this.walk(cell.tokens, isInUnsafeLink);
        return;
      }
      default:
        if ('tokens' in token && token.tokens) this.walk(token.tokens, isInUnsafeLink);
    }
  }

  /** `[^label]` at `at` as `[^<prefix>label]`; the new `[^…]`. */
  private relabel(at: number, label: string): string {
    const old = `[^${label}]`;
    if (this.source.slice(at, at + old.length) !== old) throw new Unplaced();
    const relabelled = `[^${this.labels.of(label)}]`;
    this.edit(at, at + old.length, relabelled);
    return relabelled;
  }

  /** Raw HTML as text: `&` and `<` as entities, and a later line's block mark (`#`, `>`, `-`, `1.`…) escaped. */
  private escapeHtml(span: Span): void {
    span.lines.forEach((line, i) => {
      const mark = i > 0 ? BLOCK_MARK.exec(this.source.slice(line.start, line.end))?.[0] : undefined;
      // Before a list number's `.` or `)`, else before the mark itself.
      if (mark) this.insert(line.start + (/^\d/.test(mark) ? mark.length : 0), '\\');
      for (let at = line.start; at < line.end; at++) {
        const ch = this.source[at];
        if (ch === '<') this.edit(at, at + 1, '&lt;');
        else if (ch === '&') this.edit(at, at + 1, '&amp;');
      }
    });
  }

  private edit(start: number, end: number, text: string): void {
    this.edits.push({ start, end, text });
  }

  private insert(at: number, text: string): void {
    this.edits.push({ start: at, end: at, text });
  }

  /**
   * Where `raw` is, from the cursor on and within the bound: each non-blank line (trimmed) in turn, only white space
   * and `>` between two (a quote's or a list's prefix). Null for a blank token.
   */
  private locate(raw: string): Span | null {
    const lines: Span['lines'] = [];
    let from = this.cursor;
    for (const line of raw.split('\n')) {
      const text = line.trim();
      if (text === '') continue;
      let at = this.source.indexOf(text, from);
      let length = text.length;
      if ((at === -1 || at + length > this.bound) && text.includes('|')) {
        // A table cell's text has its `\|` unescaped.
        const escaped = text.replace(/\|/g, '\\|');
        at = this.source.indexOf(escaped, from);
        length = escaped.length;
      }
      if (at === -1 || at + length > this.bound) throw new Unplaced();
      if (lines.length > 0 && !/^[ \t>]*\n[\s>]*$/.test(this.source.slice(from, at))) throw new Unplaced();
      lines.push({ start: at, end: at + length });
      from = at + length;
    }
    return lines.length === 0 ? null : { start: lines[0].start, end: from, lines };
  }
}

/** Whether a line reads, to plain Markdown, as a link reference definition to an unsafe address. */
function isUnsafeDefinition(line: string): boolean {
  try {
    return new BoundedLexer({ gfm: true }).lex(line).some((t) => t.type === 'def' && !isSafeUrl((t as Tokens.Def).href));
  } catch {
    return true;
  }
}

/** ASCII punctuation: each can be escaped with a backslash in Markdown, and shows as itself. */
const MARKDOWN_PUNCTUATION = /[!-/:-@[-`{-~]/;

/** Text shown as written, on one line. */
function escapeMarkdown(text: string): string {
  return text.replace(new RegExp(MARKDOWN_PUNCTUATION.source, 'g'), '\\$&').replace(/\s*\n\s*/g, ' ');
}

/** Markdown whose last code block is left open (CommonMark fences) gets its closing fence. */
export function closeOpenFence(markdown: string): string {
  let open: string | null = null;
  for (const line of markdown.split('\n')) {
    const fence = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (!fence) continue;
    const [, marks, rest] = fence;
    if (open === null) {
      // A backtick fence's info string cannot hold a backtick (that line is inline code, not a fence).
      if (!(marks[0] === '`' && rest.includes('`'))) open = marks;
    } else if (marks[0] === open[0] && marks.length >= open.length && rest.trim() === '') {
      open = null;
    }
  }
  return open === null ? markdown : `${markdown}\n${open}`;
}

/** The app's own words (a notice) as one line of plain text in Markdown. */
function escapeInline(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/([\\`*_[\]#|~!>])/g, '\\$1');
}

/** A file's name as inline code: whatever it holds, no Markdown (a backtick in it becomes a quote). */
function asCode(name: string): string {
  return `\`${name.replace(/`/g, "'")}\``;
}

/** A heading's text kept on one line, its leading marks not read as Markdown, and HTML in it as text (a model's title). */
function escapeHeading(text: string): string {
  return text.replace(/\s+/g, ' ').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/^([#>*+-])/, '\\$1');
}
