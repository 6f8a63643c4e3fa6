const OPENING = /^\s*<think>/;
const CLOSING = '</think>';

/**
 * An answer without the thinking a reasoning model (DeepSeek-R1, Qwen3, QwQ on Ollama, vLLM or llama.cpp) put at
 * its start as `<think>…</think>`: what the answer says, for its context in later turns (the models' own guidance:
 * earlier reasoning is not sent back) and for a title. A block never closed is all thinking: no answer. Anything
 * else, a `<think>` later in the text included, is the answer as written.
 */
export function withoutThinking(content: string): string {
  const opening = OPENING.exec(content);
  if (!opening) return content;
  const end = content.indexOf(CLOSING, opening[0].length);
  return end === -1 ? '' : content.slice(end + CLOSING.length).trimStart();
}
