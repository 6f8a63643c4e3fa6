import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { Inject, Injectable } from '@nestjs/common';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { FileMetrics } from './file-metrics.js';

export interface Extraction {
  text: string;
  /** Pages of a PDF, null for other types. */
  pages: number | null;
  /** The text was cut at the configured maximum (a visible marker says so). */
  truncated: boolean;
  tokenCount: number;
}

type WorkerReply =
  | ({ ok: true } & Extraction)
  | { ok: false; kind: 'unsupported' | 'processing'; message: string };

export interface ExtractorLimits {
  maxPages: number;
  maxChars: number;
  timeoutMs: number;
  maxMemoryMb: number;
  /** Workers running at once; more jobs wait in line. */
  concurrency: number;
  /** Jobs allowed to wait; beyond that uploads are refused as busy instead of piling up buffers. */
  maxQueued: number;
}

/** What a worker costs beyond its heap (a V8 isolate, pdf.js loaded): ~150 MB measured on a 500-page PDF. */
const WORKER_OVERHEAD_MB = 256;

/** The worker sits next to this file: sources under Vitest, dist/server/files/ once built. */
export const EXTRACT_WORKER_PATH = join(__dirname, 'extract.worker.mjs');

/**
 * Turns an upload's bytes into text for the model. All parsing happens in a worker thread with
 * a heap cap and a deadline, so a hostile or huge file (PDF, deep JSON, megabytes of text) can
 * neither block the event loop nor exhaust the process: the worker is simply terminated.
 */
@Injectable()
export class TextExtractor {
  private readonly limits: ExtractorLimits;
  private running = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(@Inject(APP_CONFIG) config: AppConfig, private readonly metrics: FileMetrics) {
    this.limits = {
      maxPages: config.files.pdfMaxPages,
      maxChars: config.files.maxExtractedChars,
      timeoutMs: config.files.pdfTimeoutMs,
      maxMemoryMb: config.files.pdfMaxMemoryMb,
      concurrency: 2,
      maxQueued: 32,
    };
    if (!existsSync(EXTRACT_WORKER_PATH)) throw new Error(`Extraction worker missing at ${EXTRACT_WORKER_PATH} (build:server copies it)`);
  }

  /** Extracts the text of a file of the given (allowed, lower-case) type. Throws AppException on refusal. */
  async extract(bytes: Buffer, fileType: string): Promise<Extraction> {
    await this.acquire();
    const started = performance.now();
    let outcome: 'ok' | 'refused' = 'refused';
    try {
      const result = await this.runWorker(bytes, fileType);
      outcome = 'ok';
      return result;
    } finally {
      this.metrics.observeExtraction(performance.now() - started, fileType, outcome);
      this.release();
    }
  }

  private runWorker(bytes: Buffer, fileType: string): Promise<Extraction> {
    const { maxPages, maxChars, timeoutMs, maxMemoryMb } = this.limits;
    // A copy the worker owns: the caller's buffer may be a view into a pooled allocation.
    const copy = new Uint8Array(bytes);
    return new Promise<Extraction>((resolve, reject) => {
      const worker = new Worker(EXTRACT_WORKER_PATH, {
        workerData: { bytes: copy, fileType, maxPages, maxChars },
        transferList: [copy.buffer],
        resourceLimits: { maxOldGenerationSizeMb: maxMemoryMb, maxYoungGenerationSizeMb: 32, stackSizeMb: 4 },
        stdout: true,
        stderr: true,
      });
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(watchdog);
        fn();
        void worker.terminate();
      };
      const tooBig = (): AppException => new AppException(ErrorCode.FileProcessingError,
        `Extracting the text needs more than ${maxMemoryMb} MB of memory; the file is too large or too complex`);
      const timer = setTimeout(() => finish(() => reject(new AppException(ErrorCode.FileProcessingError,
        `Extracting the text took longer than ${Math.round(timeoutMs / 1000)} s; the file is too large or too complex`))), timeoutMs);
      // resourceLimits cap the worker's JS heap only. Decoded PDF streams live in ArrayBuffers
      // outside it (a 1 MB PDF can inflate a 1 GB content stream), and they count against the
      // whole process, so the process's growth since the job began is watched as well.
      const baseline = process.memoryUsage.rss();
      const budget = (maxMemoryMb + WORKER_OVERHEAD_MB) * 1024 * 1024;
      const watchdog = setInterval(() => {
        if (process.memoryUsage.rss() - baseline > budget) finish(() => reject(tooBig()));
      }, 20);
      // pdf.js warns on stdout/stderr about odd fonts; those are not our logs.
      worker.stdout.resume();
      worker.stderr.resume();
      worker.on('message', (reply: WorkerReply) => finish(() => {
        if (reply.ok) {
          resolve({ text: reply.text, pages: reply.pages, truncated: reply.truncated, tokenCount: reply.tokenCount });
        } else {
          const code = reply.kind === 'unsupported' ? ErrorCode.UnsupportedFileType : ErrorCode.FileProcessingError;
          reject(new AppException(code, reply.message));
        }
      }));
      worker.on('error', (err: Error & { code?: string }) => finish(() => reject(err.code === 'ERR_WORKER_OUT_OF_MEMORY'
        ? tooBig()
        : new AppException(ErrorCode.FileProcessingError, 'The file could not be processed'))));
      worker.on('exit', () => finish(() => reject(new AppException(ErrorCode.FileProcessingError, 'The file could not be processed'))));
    });
  }

  private async acquire(): Promise<void> {
    if (this.running < this.limits.concurrency) {
      this.running++;
      return;
    }
    if (this.waiting.length >= this.limits.maxQueued) {
      throw new AppException(ErrorCode.ServiceUnavailable, 'Too many files are being processed; try again shortly', undefined, { 'Retry-After': '5' });
    }
    // release() hands its slot straight to the next in line, so `running` stays counted.
    await new Promise<void>((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.running--;
  }
}
