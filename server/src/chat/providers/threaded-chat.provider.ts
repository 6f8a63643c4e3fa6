import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Logger } from '@nestjs/common';
import { chatChannels } from '../../common/diagnostics.js';
import type { AppConfig } from '../../config/app-config.js';
import {
  type ChatProvider, type CompletionRequest, type PreparedCompletion, ProviderError, type ProviderChunk, type ProviderFailureKind,
} from './chat-provider.js';
import { ENTRY_SIZE, type FromUpstreamWorker, Report, type ToUpstreamWorker, type UpstreamWorkerData } from './upstream-protocol.js';

/** The worker's compiled code: next to this file in the build; the tests point it at their own build of the source. */
export const upstreamWorker = { file: join(__dirname, 'upstream.worker.js') };
/** How long a closing worker may take to close its connections before it is terminated. */
const CLOSE_GRACE_MS = 2000;
/**
 * How long a stream's token after its first may wait in the worker for others to leave in the same
 * message (a stream's first token and its end never wait). Same-run A/B at 150 streams of 50
 * tokens/s: CPU per token 0.92–0.94×, TTFT median 0.98×, inter-token gap p99 0.94–0.95×.
 */
const COALESCE_MS = 2;

/** A completion the worker is building ahead of its send (`prepare`), until it is sent or cancelled. */
class PreparedInWorker implements PreparedCompletion {
  private isTaken = false;

  constructor(readonly id: number, readonly worker: Worker) {}

  cancel(): void {
    if (this.isTaken) return;
    this.isTaken = true;
    this.worker.postMessage({ op: 'abort', id: this.id } satisfies ToUpstreamWorker);
  }

  /** Takes it for sending on `worker`; false when it is used or cancelled, or its worker is not that one. */
  take(worker: Worker): boolean {
    if (this.isTaken || this.worker !== worker) return false;
    this.isTaken = true;
    return true;
  }
}

interface Pending {
  onChunk: (chunk: ProviderChunk) => void;
  resolve: () => void;
  reject: (err: unknown) => void;
  signal: AbortSignal;
  onAbort: () => void;
  hasToken: boolean;
}

/**
 * The OpenAI-compatible provider with its upstream half on a worker thread: the worker runs
 * OpenAiChatProvider (the official SDK over Node's HTTP client: connection pool, SSE reading,
 * JSON parsing, retries and timeouts) and reports the chunks of every completion in batches (a
 * stream's first token and its end at once, its other tokens within `coalesceMs`). The main
 * thread only hands each chunk on.
 *
 * Why: reading a stream costs about as much as writing it to the browser (socket reads, HTTP
 * parsing, decoding, JSON.parse per token), and with both on the main thread one relay saturated
 * one core at ~150 streams of 50 tokens/s while the others sat idle (bench scenario 1,
 * docs/performance.md). Same contract as OpenAiChatProvider: chunks in order and synchronously
 * to `onChunk`, resolves after [DONE], rejects with a ProviderError; an abort rejects at once.
 *
 * If the worker dies, its running completions end as if the upstream had cut them (`cut` after
 * a token, else `connection`) and the next completion starts a new worker.
 */
export class ThreadedChatProvider implements ChatProvider {
  readonly name = 'openai' as const;
  readonly isDemo = false;
  readonly model: string;
  private readonly logger = new Logger(ThreadedChatProvider.name);
  private worker?: Worker;
  private nextId = 1;
  private readonly streams = new Map<number, Pending>();
  private closing?: Promise<void>;
  /** Set at shutdown: no new worker is started after it. */
  private isClosed = false;

  constructor(private readonly llm: AppConfig['llm'], private readonly coalesceMs = COALESCE_MS) {
    this.model = llm.model;
  }

  /** Starts the worker at boot, so the first chat does not wait for it. */
  onApplicationBootstrap(): void {
    this.ensureWorker();
  }

  /** Closes the worker's connections and ends it (Nest calls it after running replies drained). */
  onApplicationShutdown(): Promise<void> {
    this.isClosed = true;
    const worker = this.worker;
    if (!worker) return this.closing ?? Promise.resolve();
    this.worker = undefined;
    this.failAll(new ProviderError('connection', 'shutting down'));
    this.closing = new Promise<void>((resolve) => {
      const timer = setTimeout(() => { void worker.terminate(); }, CLOSE_GRACE_MS);
      worker.once('exit', () => { clearTimeout(timer); resolve(); });
      worker.postMessage({ op: 'close' } satisfies ToUpstreamWorker);
    });
    return this.closing;
  }

  /**
   * The worker builds the request (the SDK's part, ~0.2 ms at 150 streams) while the main thread
   * stores the turn; `stream` then only tells it to send. Nothing is sent before that.
   */
  prepare(request: CompletionRequest): PreparedCompletion {
    if (this.isClosed) return { cancel: () => undefined };
    const worker = this.ensureWorker();
    const prepared = new PreparedInWorker(this.nextId++, worker);
    worker.postMessage({ op: 'prepare', id: prepared.id, request } satisfies ToUpstreamWorker);
    return prepared;
  }

  stream(request: CompletionRequest, signal: AbortSignal, onChunk: (chunk: ProviderChunk) => void, prepared?: PreparedCompletion): Promise<void> {
    if (signal.aborted || this.isClosed) {
      prepared?.cancel();
      return Promise.reject(new ProviderError('connection', signal.aborted ? 'aborted' : 'shutting down'));
    }
    const worker = this.ensureWorker();
    // Prepared on a worker that has since stopped (or already used): built again from scratch.
    const isPrepared = prepared instanceof PreparedInWorker && prepared.take(worker);
    if (prepared && !isPrepared) prepared.cancel();
    const id = isPrepared ? prepared.id : this.nextId++;
    return new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        if (!this.streams.has(id)) return;
        this.end(id, new ProviderError('connection', 'aborted'));
        worker.postMessage({ op: 'abort', id } satisfies ToUpstreamWorker);
      };
      this.streams.set(id, { onChunk, resolve, reject, signal, onAbort, hasToken: false });
      signal.addEventListener('abort', onAbort, { once: true });
      worker.postMessage((isPrepared ? { op: 'send', id } : { op: 'stream', id, request }) satisfies ToUpstreamWorker);
      if (chatChannels.upstreamPosted.hasSubscribers) chatChannels.upstreamPosted.publish({ id });
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(upstreamWorker.file, { workerData: { llm: this.llm, coalesceMs: this.coalesceMs } satisfies UpstreamWorkerData });
    // The worker never keeps the process alive: the HTTP server and the running replies do.
    worker.unref();
    worker.on('message', (batch: FromUpstreamWorker) => this.handle(batch));
    worker.on('error', (err) => this.logger.error({ err }, 'the upstream worker failed'));
    worker.on('exit', (code) => {
      if (this.worker !== worker) return;
      this.worker = undefined;
      this.logger.error({ code }, 'the upstream worker stopped; its running replies end as cut');
      this.failAll();
    });
    this.worker = worker;
    return worker;
  }

  /** One batch of the worker's reports, in the order it made them. */
  private handle(batch: FromUpstreamWorker): void {
    for (let i = 0; i + ENTRY_SIZE <= batch.length; i += ENTRY_SIZE) {
      const id = batch[i] as number;
      const stream = this.streams.get(id);
      // Aborted here already, or ended by a chunk handler that threw: the rest is not wanted.
      if (!stream) continue;
      const a = batch[i + 2];
      switch (batch[i + 1] as Report) {
        case Report.Token:
          if (!stream.hasToken && chatChannels.upstreamFirstToken.hasSubscribers) chatChannels.upstreamFirstToken.publish({ id });
          stream.hasToken = true;
          this.deliver(id, stream, { type: 'token', text: a as string });
          break;
        case Report.Finish:
          this.deliver(id, stream, { type: 'finish', reason: a as string });
          break;
        case Report.Usage:
          this.deliver(id, stream, { type: 'usage', promptTokens: a as number, completionTokens: batch[i + 3] as number });
          break;
        case Report.Done:
          this.end(id);
          break;
        case Report.Failed: {
          const status = batch[i + 4];
          this.end(id, new ProviderError(a as ProviderFailureKind, batch[i + 3] as string, typeof status === 'number' ? status : undefined));
          break;
        }
        case Report.Crashed:
          this.end(id, new Error(`upstream worker: ${String(batch[i + 3])}`));
          break;
      }
    }
  }

  private deliver(id: number, stream: Pending, chunk: ProviderChunk): void {
    try {
      stream.onChunk(chunk);
    } catch (err) {
      // As in process: the completion rejects with the handler's error and its request is dropped.
      this.end(id, err);
      this.worker?.postMessage({ op: 'abort', id } satisfies ToUpstreamWorker);
    }
  }

  private end(id: number, err?: unknown): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    this.streams.delete(id);
    stream.signal.removeEventListener('abort', stream.onAbort);
    if (err === undefined) stream.resolve();
    else stream.reject(err);
  }

  /** Ends every running completion: the worker is gone (or going). */
  private failAll(err?: ProviderError): void {
    for (const [id, stream] of this.streams) {
      this.end(id, err ?? (stream.hasToken
        ? new ProviderError('cut', 'The upstream worker stopped mid-answer')
        : new ProviderError('connection', 'The upstream worker stopped')));
    }
  }
}
