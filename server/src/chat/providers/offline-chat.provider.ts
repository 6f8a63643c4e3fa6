import { ProviderError, type ChatProvider, type CompletionRequest, type ProviderChunk } from './chat-provider.js';
import { countTokens } from '../token-count.js';

export const OFFLINE_MODEL = 'parley-offline-demo';
const ECHO_MAX_CHARS = 600;

function wait(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => { clearTimeout(timer); reject(new ProviderError('connection', 'aborted')); };
    const timer = setTimeout(() => { signal.removeEventListener('abort', onAbort); resolve(); }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

/** The user's own words of the last user turn, without the attached files' text. */
function lastUserText(request: CompletionRequest): string {
  const last = [...request.messages].reverse().find((m) => m.role === 'user')?.content ?? '';
  // A message of files alone starts with its first block (token-budget.ts's withFiles).
  const withoutFiles = last.startsWith('<file name=') && request.fileNames.length > 0 ? '' : last.split('\n\n<file name=')[0] ?? last;
  return withoutFiles.length > ECHO_MAX_CHARS ? `${withoutFiles.slice(0, ECHO_MAX_CHARS)}…` : withoutFiles;
}

/** The deterministic demo reply: what is going on, how to configure a model, and an echo of the input. */
export function offlineReply(request: CompletionRequest): string {
  const turns = request.messages.filter((m) => m.role !== 'system').length;
  const text = lastUserText(request);
  const received = `I received ${turns} message${turns === 1 ? '' : 's'} of context.`;
  const files = request.fileNames.length > 0 ? `\n\nAttached files: ${request.fileNames.map((n) => `\`${n}\``).join(', ')}.` : '';
  return [
    '**Offline demo mode: no language model is configured**, so this reply comes from a script, not from an AI.',
    '',
    'To chat with a real model, set `OPENAI_API_KEY` (and optionally `OPENAI_MODEL`) and restart Parley, or point',
    '`OPENAI_BASE_URL` at any OpenAI-compatible server: Ollama (`http://localhost:11434/v1`), vLLM, LM Studio or llama.cpp.',
    '',
    ...(text === '' ? [`${received} Your last message had files but no question.`]
      : [`${received} Your last message was:`, '', text.split('\n').map((l) => `> ${l}`).join('\n')]),
  ].join('\n') + files;
}

/** A clearly labelled demo model, paced like a real one (llm.offlineTokenDelayMs per token). */
export class OfflineChatProvider implements ChatProvider {
  readonly name = 'offline' as const;
  readonly model = OFFLINE_MODEL;
  readonly isDemo = true;

  constructor(private readonly tokenDelayMs: number) {}

  async stream(request: CompletionRequest, signal: AbortSignal, onChunk: (chunk: ProviderChunk) => void): Promise<void> {
    const reply = offlineReply(request);
    // Word-sized pieces (with their trailing space), like a model's tokens.
    const pieces = reply.match(/\s*\S+\s?/g) ?? [reply];
    for (const text of pieces) {
      if (signal.aborted) throw new ProviderError('connection', 'aborted');
      if (this.tokenDelayMs > 0) await wait(this.tokenDelayMs, signal);
      onChunk({ type: 'token', text });
    }
    onChunk({ type: 'finish', reason: 'stop' });
    onChunk({
      type: 'usage',
      promptTokens: request.messages.reduce((n, m) => n + countTokens(m.content) + 4, 0),
      completionTokens: countTokens(reply),
    });
  }
}
