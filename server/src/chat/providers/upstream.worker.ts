// The upstream worker: runs the model's completions (OpenAiChatProvider over Node's HTTP client,
// through the official SDK) on a thread of its own and reports their chunks to the main thread.
// Started by ThreadedChatProvider; never imported by the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { type CompletionRequest, ProviderError, type ProviderChunk } from './chat-provider.js';
import { OpenAiChatProvider } from './openai-chat.provider.js';
import { type FromUpstreamWorker, Report, type ToUpstreamWorker, type UpstreamWorkerData } from './upstream-protocol.js';

const port = parentPort;
if (!port) throw new Error('upstream.worker runs as a worker thread only');

const { llm, coalesceMs } = workerData as UpstreamWorkerData;
const provider = new OpenAiChatProvider(llm);
const running = new Map<number, AbortController>();

// Reports leave in batches, one message per batch: one wake-up of the main thread for many
// tokens. What the user waits for leaves right after the I/O of the turn that read it
// (setImmediate runs after the poll phase): a stream's first token and every ending. A later
// token may wait up to `coalesceMs` (2 ms) for others to join it: each message costs a wake-up on
// both threads (at 150 streams of 50 tokens/s, postMessage alone took ~6 µs of this thread per
// token when every turn sent its own).
let outbox: FromUpstreamWorker = [];
let isUrgent = false;
let timer: NodeJS.Timeout | undefined;
const flush = (): void => {
  isUrgent = false;
  if (timer) { clearTimeout(timer); timer = undefined; }
  if (outbox.length === 0) return;
  const batch = outbox;
  outbox = [];
  port.postMessage(batch);
};
/** Streams that have reported a token (their next ones may wait for company). */
const started = new Set<number>();
/** One entry of ENTRY_SIZE slots: [stream id, code, a, b, c]. */
const report = (id: number, code: Report, a: string | number | null = null, b: string | number | null = null, c: number | null = null): void => {
  outbox.push(id, code, a, b, c);
  const canWait = code === Report.Token && started.has(id);
  if (code === Report.Token) started.add(id);
  if (!canWait) {
    if (!isUrgent) {
      isUrgent = true;
      setImmediate(flush);
    }
  } else if (!isUrgent && !timer) {
    timer = setTimeout(flush, coalesceMs);
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
  ).finally(() => { running.delete(id); started.delete(id); });
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
