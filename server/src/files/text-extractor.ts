import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { rateLimitExceeded } from '../common/rate-limit.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import type { ChildLimits, Extraction, ExtractionHostData, FromExtractionHost, JobOutcome, ToExtractionHost } from './extraction-children.js';
import { FileMetrics } from './file-metrics.js';

export type { Extraction } from './extraction-children.js';

/** The children's limits (kept by the extraction host), and the lines' own. */
export interface ExtractorLimits extends ChildLimits {
  /** PDF extractions running at once; more wait in line. Other files have a lane of their own (one at a time). */
  concurrency: number;
  /** Jobs allowed to wait, per lane; beyond that uploads are refused as busy. */
  maxQueued: number;
}

/**
 * Places one client (an address: sessions are free, sixty a minute) may hold in a lane's line. The
 * line was first come, first served for the whole server: 34 sessions of one client, each sending a
 * 238 KiB PDF that takes its 30 s of CPU, filled it, and every other upload was refused as busy for
 * many minutes (a text file waited 43 s behind one such PDF).
 */
export const MAX_QUEUED_PER_CLIENT = 4;

/** PDF extractions run at once: on 2 cores or fewer, two would keep both busy; one at a time leaves a core to the server. */
export function pdfSlots(): number {
  return availableParallelism() <= 2 ? 1 : 2;
}

/** Who a job is for, and when its request is over (the client gone: it leaves the line, or its child is stopped). */
export interface ExtractionRequest {
  client: string;
  signal?: AbortSignal;
}

/** A job waiting for its lane, and how it is told. */
interface Waiter {
  client: string;
  start: () => void;
}

/**
 * Jobs waiting, served one client at a time in turn (round robin): a client with many files waiting
 * delays another's by one of its jobs at most, not by all of them.
 */
class FairLine {
  private readonly byClient = new Map<string, Waiter[]>();
  size = 0;

  waitingFor(client: string): number {
    return this.byClient.get(client)?.length ?? 0;
  }

  push(waiter: Waiter): void {
    const line = this.byClient.get(waiter.client);
    if (line) line.push(waiter);
    else this.byClient.set(waiter.client, [waiter]);
    this.size++;
  }

  /** The next client's first job; that client goes to the back. */
  shift(): Waiter | undefined {
    for (const [client, line] of this.byClient) {
      const waiter = line.shift()!;
      this.byClient.delete(client);
      if (line.length > 0) this.byClient.set(client, line);
      this.size--;
      return waiter;
    }
    return undefined;
  }

  remove(waiter: Waiter): boolean {
    const line = this.byClient.get(waiter.client);
    const at = line?.indexOf(waiter) ?? -1;
    if (!line || at < 0) return false;
    line.splice(at, 1);
    if (line.length === 0) this.byClient.delete(waiter.client);
    this.size--;
    return true;
  }
}

/** One lane of extractions: how many run, and who waits. */
interface Lane {
  running: number;
  concurrency: number;
  line: FairLine;
}

/** The client went away while its file waited or was read: nobody reads the answer. */
const clientGone = (): AppException => new AppException(ErrorCode.ValidationError, 'Upload aborted');

/** The child's entry sits next to this file: sources under Vitest, dist/server/files/ once built. */
export const EXTRACT_WORKER_PATH = join(__dirname, 'extract.worker.mjs');

/** The extraction host's compiled code: next to this file in the build; the tests point it at their own build of the source. */
export const extractionHost = { file: join(__dirname, 'extraction-host.worker.js') };

/** A job sent to the extraction host, until its outcome comes back (or its client leaves). */
interface HostJob {
  resolve: (outcome: JobOutcome) => void;
}

/**
 * Turns an upload's bytes into text for the model. All parsing happens in a child process at the
 * lowest CPU priority, with a heap cap, an RSS cap and a deadline, so a hostile or huge file
 * (PDF, deep JSON, megabytes of text) can neither block nor starve the event loop nor exhaust the
 * server: the child is simply killed. The children are started and watched by the extraction host,
 * a thread of its own (extraction-children.ts); this class keeps the lines in which files wait.
 */
@Injectable()
export class TextExtractor implements OnApplicationShutdown {
  private readonly logger = new Logger(TextExtractor.name);
  private readonly limits: ExtractorLimits;
  /**
   * PDFs, and everything else: a text file takes milliseconds to a second or two, a PDF up to its
   * 30 s of CPU, and text files waited behind PDFs.
   */
  private readonly lanes: { pdf: Lane; text: Lane };
  /** The thread that owns the children, started with the first job. */
  private host?: Worker;
  private readonly jobs = new Map<number, HostJob>();
  private nextJobId = 1;
  private isClosed = false;

  constructor(@Inject(APP_CONFIG) config: AppConfig, private readonly metrics: FileMetrics) {
    this.limits = {
      maxPages: config.files.pdfMaxPages,
      maxChars: config.files.maxExtractedChars,
      timeoutMs: config.files.pdfTimeoutMs,
      maxMemoryMb: config.files.pdfMaxMemoryMb,
      concurrency: pdfSlots(),
      maxQueued: 32,
      warmMs: config.files.extractWarmMs,
    };
    this.lanes = {
      pdf: { running: 0, concurrency: this.limits.concurrency, line: new FairLine() },
      text: { running: 0, concurrency: 1, line: new FairLine() },
    };
    if (!existsSync(EXTRACT_WORKER_PATH)) throw new Error(`Extraction worker missing at ${EXTRACT_WORKER_PATH} (build:server copies it)`);
  }

  /**
   * Extracts the text of a file of the given (allowed, lower-case) type. Throws AppException on
   * refusal. `source` may be a loader: the file is read only once its turn has come, so the files
   * waiting hold no memory (40 sessions queueing 10 MB files held 800 MB of buffers).
   */
  async extract(source: Buffer | (() => Promise<Buffer>), fileType: string, request: ExtractionRequest = { client: '' }): Promise<Extraction> {
    const lane = fileType === '.pdf' ? this.lanes.pdf : this.lanes.text;
    await this.acquire(lane, request);
    const started = performance.now();
    let outcome: 'ok' | 'refused' = 'refused';
    try {
      request.signal?.throwIfAborted();
      const bytes = typeof source === 'function' ? await source() : source;
      const result = await this.runJob(bytes, fileType, request.signal);
      outcome = 'ok';
      return result;
    } catch (err) {
      throw request.signal?.aborted ? clientGone() : err;
    } finally {
      this.metrics.observeExtraction(performance.now() - started, fileType, outcome);
      this.release(lane);
      // A child for the next file, started in advance (on the host's thread).
      if (!this.isClosed && this.limits.warmMs > 0) this.post({ op: 'keep-spare' });
    }
  }

  /** Files being read, in both lanes. */
  get running(): number {
    return this.lanes.pdf.running + this.lanes.text.running;
  }

  /** Files waiting for their turn, in both lanes. */
  get waiting(): number {
    return this.lanes.pdf.line.size + this.lanes.text.line.size;
  }

  onApplicationShutdown(): void {
    this.isClosed = true;
    // The host drops the children waiting for a job; the files being read still get their answers, then it ends.
    this.host?.postMessage({ op: 'close' } satisfies ToExtractionHost);
  }

  private post(msg: ToExtractionHost, transfer?: ArrayBuffer[]): void {
    this.ensureHost().postMessage(msg, transfer);
  }

  private ensureHost(): Worker {
    if (this.host) return this.host;
    const { maxPages, maxChars, timeoutMs, maxMemoryMb, warmMs } = this.limits;
    const host = new Worker(extractionHost.file, {
      workerData: { limits: { maxPages, maxChars, timeoutMs, maxMemoryMb, warmMs }, childEntry: EXTRACT_WORKER_PATH } satisfies ExtractionHostData,
    });
    // It keeps the process alive only while a job runs (see runJob).
    host.unref();
    host.on('message', ({ id, outcome }: FromExtractionHost) => this.settle(id, outcome));
    host.on('error', (err) => this.logger.error({ err }, 'the extraction host failed'));
    host.on('exit', (code) => {
      if (this.host === host) {
        this.host = undefined;
        // After shutdown it ends once its files have answered.
        if (!this.isClosed) this.logger.error({ code }, 'the extraction host stopped; the files being read fail');
      }
      for (const id of [...this.jobs.keys()]) this.settle(id, { ok: false, kind: 'failed' });
    });
    this.host = host;
    return host;
  }

  private settle(id: number, outcome: JobOutcome): void {
    const job = this.jobs.get(id);
    if (!job) return;
    this.jobs.delete(id);
    if (this.jobs.size === 0) this.host?.unref();
    job.resolve(outcome);
  }

  /** One file through the host: its text, or the refusal its outcome says. */
  private async runJob(bytes: Buffer, fileType: string, signal?: AbortSignal): Promise<Extraction> {
    const id = this.nextJobId++;
    const outcome = await new Promise<JobOutcome>((resolve) => {
      const stop = (): void => {
        this.post({ op: 'cancel', id });
        this.settle(id, { ok: false, kind: 'failed' });
      };
      this.jobs.set(id, {
        resolve: (o) => {
          signal?.removeEventListener('abort', stop);
          resolve(o);
        },
      });
      signal?.addEventListener('abort', stop, { once: true });
      // A copy the host owns (moved, not copied again): the caller's buffer may be a view into a pooled allocation.
      const copy = new Uint8Array(bytes);
      this.post({ op: 'job', id, bytes: copy, fileType }, [copy.buffer]);
      this.host?.ref();
    });
    if (outcome.ok) return { text: outcome.text, pages: outcome.pages, truncated: outcome.truncated, tokenCount: outcome.tokenCount };
    if (signal?.aborted) throw clientGone();
    switch (outcome.kind) {
      case 'unsupported':
        throw new AppException(ErrorCode.UnsupportedFileType, outcome.message);
      case 'processing':
        throw new AppException(ErrorCode.FileProcessingError, outcome.message);
      case 'too-big':
        throw new AppException(ErrorCode.FileProcessingError,
          `Extracting the text needs more than ${this.limits.maxMemoryMb} MB of memory; the file is too large or too complex`);
      case 'too-slow':
        throw new AppException(ErrorCode.FileProcessingError,
          `Extracting the text took longer than ${Math.round(this.limits.timeoutMs / 1000)} s; the file is too large or too complex`);
      case 'failed':
        throw new AppException(ErrorCode.FileProcessingError, 'The file could not be processed');
    }
  }

  private async acquire(lane: Lane, { client, signal }: ExtractionRequest): Promise<void> {
    if (signal?.aborted) throw clientGone();
    if (lane.running < lane.concurrency) {
      lane.running++;
      return;
    }
    if (lane.line.size >= this.limits.maxQueued) {
      throw new AppException(ErrorCode.ServiceUnavailable, 'Too many files are being processed; try again shortly', undefined, { 'Retry-After': '5' });
    }
    if (lane.line.waitingFor(client) >= MAX_QUEUED_PER_CLIENT) {
      throw rateLimitExceeded(5, MAX_QUEUED_PER_CLIENT, `${MAX_QUEUED_PER_CLIENT} files from your address are waiting to be read already; try again when they are done`);
    }
    // release() hands its slot straight to the next in line, so `running` stays counted.
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { client, start: () => { signal?.removeEventListener('abort', leave); resolve(); } };
      const leave = (): void => { if (lane.line.remove(waiter)) reject(clientGone()); };
      signal?.addEventListener('abort', leave, { once: true });
      lane.line.push(waiter);
    });
  }

  private release(lane: Lane): void {
    const next = lane.line.shift();
    if (next) next.start();
    else lane.running--;
  }
}
