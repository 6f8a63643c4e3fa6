// The upstream worker: runs the model's completions (OpenAiChatProvider over Node's HTTP client,
// through the official SDK) on a thread of its own and reports their chunks to the main thread.
// Started by ThreadedChatProvider; never imported by the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import type { AppConfig } from '../../config/app-config.js';
import { type CompletionRequest, ProviderError, type ProviderChunk } from './chat-provider.js';
import { OpenAiChatProvider } from './openai-chat.provider.js';
import { type FromUpstreamWorker, Report, type ToUpstreamWorker } from './upstream-protocol.js';

const port = parentPort;
if (!port) throw new Error('upstream.worker runs as a worker thread only');

const provider = new OpenAiChatProvider((workerData as { llm: AppConfig['llm'] }).llm);
const running = new Map<number, AbortController>();

// Everything reported in one turn of the event loop leaves in one message, right after the I/O of
// that turn (setImmediate runs after the poll phase): no added wait, one wake-up of the main thread.
let outbox: FromUpstreamWorker = [];
let isScheduled = false;
const flush = (): void => {
  isScheduled = false;
  const batch = outbox;
  outbox = [];
  port.postMessage(batch);
};
/** One entry of ENTRY_SIZE slots: [stream id, code, a, b, c]. */
const report = (id: number, code: Report, a: string | number | null = null, b: string | number | null = null, c: number | null = null): void => {
  outbox.push(id, code, a, b, c);
  if (!isScheduled) {
    isScheduled = true;
    setImmediate(flush);
  }
};

const onChunk = (id: number) => (chunk: ProviderChunk): void => {
  switch (chunk.type) {
    case 'token': report(id, Report.Token, chunk.text); break;
    case 'finish': report(id, Report.Finish, chunk.reason); break;
    case 'usage': report(id, Report.Usage, chunk.promptTokens, chunk.completionTokens); break;
  }
};

function start(id: number, request: CompletionRequest): void {
  const abort = new AbortController();
  running.set(id, abort);
  provider.stream(request, abort.signal, onChunk(id)).then(
    () => report(id, Report.Done),
    (err: unknown) => {
      if (err instanceof ProviderError) report(id, Report.Failed, err.kind, err.message, err.httpStatus ?? null);
      else report(id, Report.Crashed, null, err instanceof Error ? err.message : 'unknown failure');
    },
  ).finally(() => running.delete(id));
}

port.on('message', (msg: ToUpstreamWorker) => {
  switch (msg.op) {
    case 'stream': start(msg.id, msg.request); break;
    case 'abort': running.get(msg.id)?.abort(); break;
    case 'close':
      for (const abort of running.values()) abort.abort();
      provider.onApplicationShutdown();
      port.close();
      break;
  }
});
