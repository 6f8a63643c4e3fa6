/**
 * Reasoning that a server sends beside the answer rather than in it: `reasoning_content` (DeepSeek's API, LM Studio,
 * llama.cpp's server, vLLM before 0.10) or `reasoning` (vLLM since, OpenRouter, Ollama). It rejoins the answer as the
 * `<think>…</think>` block other servers put at its start (Ollama's `think: false` off, vLLM without a reasoning
 * parser), so the rest of Parley has one form to know: the SPA folds it away, later turns and titles leave it out
 * (conversations/think-block.ts), the stored message keeps it. Without this the reader of a reasoning model saw nothing, often
 * for a minute, until the answer's first word, and the reasoning was lost.
 *
 * Reasoning that comes after the answer has begun (between tool calls, which Parley does not make) is left out: the
 * block is only ever at the start.
 */
export class ReasoningBlock {
  private state: 'before' | 'thinking' | 'answering' = 'before';

  /** The text to add to the answer for one delta's reasoning and content (either may be empty). */
  text(reasoning: string, content: string): string {
    let out = '';
    if (reasoning.length > 0 && this.state !== 'answering') {
      out = this.state === 'before' ? `<think>\n${reasoning}` : reasoning;
      this.state = 'thinking';
    }
    if (content.length > 0) {
      out += this.close() + content;
      this.state = 'answering';
    }
    return out;
  }

  /** Closes a block still open (the answer ended, by length say, while the model was reasoning): '' otherwise. */
  end(): string {
    const out = this.close();
    if (out) this.state = 'answering';
    return out;
  }

  private close(): string {
    return this.state === 'thinking' ? '\n</think>\n\n' : '';
  }
}

/** A delta's (or message's) reasoning text, under either name; anything not a string is none. */
export function reasoningOf(part: { reasoning_content?: unknown; reasoning?: unknown } | undefined): string {
  if (typeof part?.reasoning_content === 'string') return part.reasoning_content;
  if (typeof part?.reasoning === 'string') return part.reasoning;
  return '';
}
