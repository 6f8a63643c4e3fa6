import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import type { ProviderMessage } from './providers/chat-provider.js';
import { countTokens, truncateToTokens } from './token-count.js';

/** A file's extracted text as it enters the context. */
export interface FileText {
  filename: string;
  extractedText: string;
  tokenCount: number;
}

export interface HistoryTurn {
  role: 'user' | 'assistant';
  content: string;
  /** Stored count of `content`; counted here when missing. */
  tokenCount: number | null;
  files: FileText[];
}

export interface PromptInput {
  systemPrompt: string;
  /** Earlier messages, oldest first (without the current turn). */
  history: HistoryTurn[];
  current: { content: string; tokenCount?: number; files: FileText[] };
  contextTokens: number;
  maxOutputTokens: number;
}

export interface BuiltPrompt {
  messages: ProviderMessage[];
  promptTokens: number;
  /** Files of the current turn cut short to fit, with the visible marker (the model sees their beginning). */
  truncatedFiles: string[];
  /** Files of the current turn left out: not even their beginning fits (the model sees the marker only, or nothing). */
  omittedFiles: string[];
  /** History messages left out (oldest first go). */
  droppedHistory: number;
}

/** Chat formats add a few tokens per message around its content. */
const PER_MESSAGE = 4;
const TRUNCATION_MARKER = '\n[… truncated: the rest of this file does not fit in the model\'s context …]';
const MIN_FILE_TOKENS = 32;

// The system prompt is the same on every request (it comes from config): count it once.
let systemCache: { text: string; tokens: number } | undefined;
function countSystemPrompt(text: string): number {
  if (systemCache?.text !== text) systemCache = { text, tokens: countTokens(text) };
  return systemCache.tokens;
}

function safeName(name: string): string {
  return name.replace(/["<>\r\n]/g, '_');
}

function fileBlock(name: string, text: string): string {
  // The file's text must not be able to close its own block and pose as the user.
  // Any tag named file, opening or closing, however spaced or cased (`</FILE >`, `< file name=…>`), loses its `<`.
  return `<file name="${safeName(name)}">\n${text.replace(/<(?=\s*\/?\s*file\b)/gi, '&lt;')}\n</file>`;
}

/** What stands in history for a question of files alone whose files were deleted since. */
export const FILES_DELETED_NOTE = '[Files were sent here; they have since been deleted.]';

/** A question with its files' blocks after it; a message of files alone (no question) is the blocks. */
function withFiles(content: string, blocks: string[]): string {
  if (blocks.length === 0) return content;
  return content === '' ? blocks.join('\n\n') : `${content}\n\n${blocks.join('\n\n')}`;
}

/**
 * Turns that strict chat templates take (Mistral, Gemma and Llama 2 on vLLM or llama.cpp answer 400 "roles must
 * alternate user/assistant"): a question whose answer failed or came back empty is joined to the next one. Joining
 * never adds tokens (one message's overhead fewer).
 */
function alternating(turns: ProviderMessage[]): ProviderMessage[] {
  const out: ProviderMessage[] = [];
  for (const turn of turns) {
    const last = out.at(-1);
    if (last !== undefined && last.role === turn.role && turn.role !== 'system') {
      out[out.length - 1] = { role: last.role, content: `${last.content}\n\n${turn.content}` };
      continue;
    }
    out.push(turn);
  }
  return out;
}

/**
 * The current turn's files in `room` tokens: as many as fit whole, smallest first (a short note attached with a
 * long PDF is read whole and the PDF cut short, where the first file in order took the room and the note was left
 * out), then each other one in its order cut to what is left, with a visible marker, or left out (its block with
 * the marker alone when that fits). The blocks keep the files' order.
 */
function fitFiles(files: FileText[], room: number): { blocks: string[]; truncatedFiles: string[]; omittedFiles: string[]; used: number } {
  const overheads = files.map((f) => countTokens(fileBlock(f.filename, '')) + 2);
  const cost = (i: number): number => files[i].tokenCount + overheads[i];
  const isWhole = files.map(() => false);
  let left = room;
  for (const i of files.map((_, i) => i).sort((a, b) => cost(a) - cost(b) || a - b)) {
    if (cost(i) > left) break;
    isWhole[i] = true;
    left -= cost(i);
  }
  const blocks: string[] = [];
  const truncatedFiles: string[] = [];
  const omittedFiles: string[] = [];
  const markerTokens = countTokens(TRUNCATION_MARKER);
  files.forEach((file, i) => {
    if (isWhole[i]) {
      blocks.push(fileBlock(file.filename, file.extractedText));
      return;
    }
    const space = left - overheads[i] - markerTokens;
    const kept = space >= MIN_FILE_TOKENS ? truncateToTokens(file.extractedText, space) : '';
    (kept === '' ? omittedFiles : truncatedFiles).push(file.filename);
    // Not even the marker's block fits: the file is left out, rather than the request passing the context.
    if (space < 0) return;
    blocks.push(fileBlock(file.filename, `${kept}${TRUNCATION_MARKER}`));
    left -= (kept === '' ? 0 : space) + overheads[i] + markerTokens;
  });
  return { blocks, truncatedFiles, omittedFiles, used: room - left };
}

const COUNT = new Intl.NumberFormat('en');
/** Characters per token of English text, for telling a person how much fits (cl100k and o200k: about 4). */
const CHARS_PER_TOKEN = 4;

/**
 * The model's context: system prompt, then as many of the newest history turns as fit, then
 * the current user turn with its files' text inside it (clearly delimited file blocks, never in
 * the system role), trimmed with a real tokenizer to contextTokens - maxOutputTokens.
 */
export function buildPrompt(input: PromptInput): BuiltPrompt {
  const systemTokens = countSystemPrompt(input.systemPrompt);
  const budget = input.contextTokens - input.maxOutputTokens - systemTokens - PER_MESSAGE;
  const currentTokens = (input.current.tokenCount ?? countTokens(input.current.content)) + PER_MESSAGE;
  if (currentTokens > budget) {
    // With the numbers: the composer counts characters, and a small local model's context fits far fewer than it allows.
    const fit = Math.max(0, budget);
    const said = `is too long for the model's context: about ${COUNT.format(currentTokens)} tokens, and at most ${COUNT.format(fit)} fit `
      + `(roughly ${COUNT.format(fit * CHARS_PER_TOKEN)} characters of English)`;
    throw new AppException(ErrorCode.ValidationError, `The message ${said}`, { fields: [{ field: 'message', errors: [`message ${said}`] }] });
  }
  const files = fitFiles(input.current.files, budget - currentTokens);
  const { blocks, truncatedFiles, omittedFiles } = files;
  let remaining = budget - currentTokens - files.used;

  const kept: ProviderMessage[] = [];
  let index = input.history.length - 1;
  for (; index >= 0; index--) {
    const stored = input.history[index];
    // A question of files alone whose files were all deleted since: said so, not sent as an empty turn (which strict
    // servers refuse, failing every later question of the conversation).
    const isEmptied = stored.role === 'user' && stored.content === '' && stored.files.length === 0;
    const turn = isEmptied ? { ...stored, content: FILES_DELETED_NOTE, tokenCount: undefined } : stored;
    const textTokens = (turn.tokenCount ?? countTokens(turn.content)) + PER_MESSAGE;
    const fileBlocks = turn.files.map((f) => fileBlock(f.filename, f.extractedText));
    const fileTokens = turn.files.reduce((n, f) => n + f.tokenCount + countTokens(fileBlock(f.filename, '')) + 2, 0);
    if (textTokens + fileTokens <= remaining) {
      kept.push({ role: turn.role, content: withFiles(turn.content, fileBlocks) });
      remaining -= textTokens + fileTokens;
      continue;
    }
    if (turn.files.length > 0) {
      const note = turn.files.map((f) => fileBlock(f.filename, '[omitted: the file does not fit in the model\'s context]'));
      const noteTokens = countTokens(note.join('\n\n')) + 2;
      if (textTokens + noteTokens <= remaining) {
        kept.push({ role: turn.role, content: withFiles(turn.content, note) });
        remaining -= textTokens + noteTokens;
        continue;
      }
    }
    break;
  }
  let droppedHistory = index + 1;
  // An answer whose question did not fit goes too: strict templates take a question first.
  while (kept.at(-1)?.role === 'assistant') {
    kept.pop();
    droppedHistory++;
  }
  kept.reverse();
  const messages = alternating([
    { role: 'system', content: input.systemPrompt },
    ...kept,
    { role: 'user', content: withFiles(input.current.content, blocks) },
  ]);
  return { messages, promptTokens: budget - remaining + systemTokens + PER_MESSAGE, truncatedFiles, omittedFiles, droppedHistory };
}
