// The upstream worker: runs the model's completions (OpenAiChatProvider over Node's HTTP client,
// through the official SDK) on a thread of its own and reports their chunks to the main thread.
// Started by ThreadedChatProvider; never imported by the main thread.
import { parentPort, workerData } from 'node:worker_threads';
import { type CompletionRequest, ProviderError, type ProviderChunk } from './chat-provider.js';
import { OpenAiChatProvider } from './openai-chat.provider.js';
import {
  ENTRY_SIZE, type FromUpstreamWorker, Report, type ToUpstreamWorker, type UpstreamWorkerData,
} from './upstream-protocol.js';

const port = parentPort;
if (!port) throw new Error('upstream.worker runs as a worker thread only');

const { llm, coalesceMs } = workerData as UpstreamWorkerData;
const provider = new OpenAiChatProvider(llm);
const running = new Map<number, AbortController>();

// Reports leave in batches, one message per batch: one wake-up of the main thread for many
// tokens. What the user waits for, a stream's first token and its end, leaves as soon as the
// read (or the settling) that brought it is handled (a microtask; a completion's [DONE] at once,
// from inside its read: see `start`), in a message of its own with
// that stream's other pending reports: the main thread then handles it without first writing the
// other streams' tokens gathered meanwhile (~7 at 150 streams, each a socket write before it).
// Anything else (a later token, the finish reason, the usage) may wait up to `coalesceMs` (2 ms)
// for others to join it: each message costs a wake-up on both threads (at 150 streams of 50
// tokens/s, postMessage alone took ~6 µs of this thread per token when every turn sent its own).
// The first token and the end used to wait for the poll phase's end (setImmediate): 0.067 and
// 0.050 ms median at 150 streams, 0.020 ms as a microtask.
let outbox: FromUpstreamWorker = [];
let timer: NodeJS.Timeout | undefined;
/** Streams with a report the user waits for, to leave at the end of this microtask checkpoint. */
const urgent = new Set<number>();
const flush = (): void => {
  if (timer) { clearTimeout(timer); timer = undefined; }
  if (outbox.length === 0) return;
  const batch = outbox;
  outbox = [];
  port.postMessage(batch);
};
/** Sends the urgent streams' reports, in their order; the others stay for their timer. Called as a microtask, or at once. */
const flushUrgent = (): void => {
  // Sent already (a stream's end leaves at once, from its read).
  if (urgent.size === 0) return;
  const now: FromUpstreamWorker = [];
  const later: FromUpstreamWorker = [];
  for (let i = 0; i + ENTRY_SIZE <= outbox.length; i += ENTRY_SIZE) {
    const into = urgent.has(outbox[i] as number) ? now : later;
    for (let j = i; j < i + ENTRY_SIZE; j++) into.push(outbox[j]);
  }
  urgent.clear();
  outbox = later;
  if (later.length === 0 && timer) { clearTimeout(timer); timer = undefined; }
  port.postMessage(now);
};
/** Streams that have reported a token (their next ones may wait for company). */
const started = new Set<number>();
/** One entry of ENTRY_SIZE slots: [stream id, code, a, b, c]. */
const report = (id: number, code: Report, a: string | number | null = null, b: string | number | null = null, c: number | null = null): void => {
  outbox.push(id, code, a, b, c);
  const isUrgent = code === Report.Token ? !started.has(id) : code !== Report.Finish && code !== Report.Usage;
  if (code === Report.Token) started.add(id);
  if (isUrgent) {
    if (urgent.size === 0) queueMicrotask(flushUrgent);
    urgent.add(id);
  } else if (!timer) {
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

/** A prepared completion's permission to send: opened by `send`, closed by `abort` (or `close`). */
interface Gate {
  opened: Promise<void>;
  open: () => void;
  close: () => void;
}
const gates = new Map<number, Gate>();

function gate(): Gate {
  let open!: () => void;
  let close!: () => void;
  const opened = new Promise<void>((resolve, reject) => {
    open = resolve;
    close = () => reject(new ProviderError('connection', 'aborted'));
  });
  // A gate closed before anyone waits on it must not be an unhandled rejection.
  opened.catch(() => undefined);
  return { opened, open, close };
}

/**
 * Runs a completion. A prepared one (`gate`) is built at once and sent when the gate opens; its
 * outcome is reported only after that too: before `send` the main thread does not follow the
 * id yet, and a report it dropped would leave its stream waiting forever.
 */
function start(id: number, request: CompletionRequest, prepared?: Gate): void {
  const abort = new AbortController();
  running.set(id, abort);
  let isDone = false;
  const done = (): void => {
    if (isDone) return;
    isDone = true;
    report(id, Report.Done);
  };
  // The end leaves from inside the read that brought [DONE], with the stream's last token: the
  // completion's promise settles only after the HTTP client's end-of-response work (0.34 ms
  // median at 50 streams on a slow machine, against 0.05 ms from a first token's read to its
  // message), which the user's last token then waited for too.
  const onDone = (): void => {
    done();
    flushUrgent();
  };
  const settled = provider.streamWith(request, abort.signal, onChunk(id), { sendWhen: prepared?.opened, onDone });
  settled.catch(() => undefined);
  (prepared ? prepared.opened.then(() => settled) : settled).then(
    done,
    (err: unknown) => {
      if (err instanceof ProviderError) report(id, Report.Failed, err.kind, err.message, err.httpStatus ?? null);
      else report(id, Report.Crashed, null, err instanceof Error ? err.message : 'unknown failure');
    },
  ).finally(() => { running.delete(id); started.delete(id); gates.delete(id); });
}

/** Ends a prepared completion's wait: sent now, or never. */
function release(id: number, send: boolean): void {
  const waiting = gates.get(id);
  if (!waiting) return;
  gates.delete(id);
  if (send) waiting.open();
  else waiting.close();
}

port.on('message', (msg: ToUpstreamWorker) => {
  switch (msg.op) {
    case 'stream': start(msg.id, msg.request); break;
    case 'prepare': {
      const waiting = gate();
      gates.set(msg.id, waiting);
      start(msg.id, msg.request, waiting);
      break;
    }
    case 'send': release(msg.id, true); break;
    case 'abort':
      release(msg.id, false);
      running.get(msg.id)?.abort();
      break;
    case 'close':
      for (const id of [...gates.keys()]) release(id, false);
      for (const abort of running.values()) abort.abort();
      provider.onApplicationShutdown();
      port.close();
      break;
  }
});
