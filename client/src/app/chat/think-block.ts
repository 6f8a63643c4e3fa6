const OPENING = /^\s*<think>/;
const CLOSING = '</think>';

/** An answer's content split into the thinking a reasoning model put at its start and the answer after it. */
export interface ThinkSplit {
  /** The text between `<think>` and `</think>`, as written; null when the content does not start with a block. */
  thinking: string | null;
  /** Whether `</think>` has arrived (true when there is no block at all). */
  isThinkingDone: boolean;
  /** What follows the block, its leading spaces trimmed; the whole content, untouched, when there is no block. */
  answer: string;
}

/**
 * Reasoning models served by Ollama, vLLM, llama.cpp or LM Studio (DeepSeek-R1, Qwen3, QwQ) put their thinking at the
 * start of the answer as `<think>…</think>`. Only a block at the start (after spaces) counts, and only the first: a
 * `<think>` later in the text is the answer's own words. A block not closed yet (still streaming, or cut off) is all
 * thinking: no answer.
 */
export function splitThinking(content: string): ThinkSplit {
  const opening = OPENING.exec(content);
  if (!opening) return { thinking: null, isThinkingDone: true, answer: content };
  const start = opening[0].length;
  const end = content.indexOf(CLOSING, start);
  if (end === -1) return { thinking: content.slice(start), isThinkingDone: false, answer: '' };
  return { thinking: content.slice(start, end), isThinkingDone: true, answer: content.slice(end + CLOSING.length).trimStart() };
}
