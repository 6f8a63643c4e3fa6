import { type ChildProcess, fork } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { availableParallelism, constants as osConstants, setPriority } from 'node:os';
import { join } from 'node:path';
import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import { rateLimitExceeded } from '../common/rate-limit.js';
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

/** `again`: the child stays for another text file (it asked to, and nothing unexpected happened). */
type WorkerReply = { again?: boolean } & (
  | ({ ok: true } & Extraction)
  | { ok: false; kind: 'unsupported' | 'processing'; message: string });

export interface ExtractorLimits {
  maxPages: number;
  maxChars: number;
  timeoutMs: number;
  maxMemoryMb: number;
  /** PDF extractions running at once; more wait in line. Other files have a lane of their own (one at a time). */
  concurrency: number;
  /** Jobs allowed to wait, per lane; beyond that uploads are refused as busy. */
  maxQueued: number;
  /** How long a process started in advance waits for the next job after one (0: none started). */
  warmMs: number;
}

/**
 * Text files one process reads before it is replaced, and the resident memory above which it is
 * not kept after one (a 10 MB file's strings and token arrays stay in its heap until collected).
 */
const TEXT_JOBS_PER_CHILD = 200;
const KEPT_CHILD_MAX_RSS = 192 * 1024 * 1024;

/** What the child costs beyond its heap (node itself, pdf.js loaded, young generation): ~200 MB measured on a 500-page PDF. */
const PROCESS_OVERHEAD_MB = 256;

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

/** Resident memory of a process from /proc (Linux); null where that is not available. */
function residentBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/** Linux reports process times in /proc in clock ticks of 1/100 s (USER_HZ) on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;
/** Without a CPU clock of the child, the deadline is wall-clock; with one, wall-clock only as a backstop, this many times it. */
const WALL_CLOCK_BACKSTOP = 4;

/** CPU time (user + system) a process has used, in ms, from /proc (Linux); null where that is not available. */
export function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name (field 2) may contain spaces and parentheses: the fields that follow start after its last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return Number.isFinite(utime) && Number.isFinite(stime) ? ((utime + stime) * 1000) / TICKS_PER_SECOND : null;
  } catch {
    return null;
  }
}

/** util-linux's `chrt`, where the OS has it (Linux): the child is started through it under SCHED_IDLE. */
const CHRT_PATHS = ['/usr/bin/chrt', '/bin/chrt'];
let chrtPath: string | null | undefined;

/**
 * How the child is started: through `chrt --idle 0` on Linux when util-linux is there, else node itself.
 * Nice 19 alone left the streams' threads waiting behind an extraction: Linux counts a core running only
 * SCHED_IDLE work as free when it places a thread that wakes, and such a thread takes the core at once,
 * where a niced child still holds it for part of a time slice (and nice counts only within the server's
 * autogroup where those are on).
 */
export function childLauncher(nodeArgs: string[]): { execPath: string; execArgv: string[] } {
  if (chrtPath === undefined) chrtPath = process.platform === 'linux' ? CHRT_PATHS.find((p) => existsSync(p)) ?? null : null;
  return chrtPath === null
    ? { execPath: process.execPath, execArgv: nodeArgs }
    : { execPath: chrtPath, execArgv: ['--idle', '0', process.execPath, ...nodeArgs] };
}

/**
 * The child gets the CPU the server leaves idle: at nice 19 it weighs ~1.5% of a nice-0 thread,
 * so the event loop (and the streams) run first and extraction takes the spare cycles. Under
 * SCHED_IDLE (see childLauncher) nice counts for nothing more; it stays for where chrt is missing.
 */
function lowerPriority(pid: number): void {
  try {
    setPriority(pid, osConstants.priority.PRIORITY_LOW);
  } catch {
    // Not permitted on this platform: the extraction still runs, at normal priority.
  }
}

/** Whether a child can still take a job. */
function isUsable(child: ChildProcess): boolean {
  return child.connected && child.exitCode === null && child.signalCode === null;
}

/**
 * A child process waiting for a job, killed after `warmMs` without one. While it waits it does not count for the
 * event loop (it never keeps the server, or a test run, alive); taken, it counts again until its job ends.
 */
class WaitingChild {
  private child: ChildProcess | null = null;
  private timer?: NodeJS.Timeout;
  private readonly watched = new WeakSet<ChildProcess>();

  constructor(private readonly warmMs: number) {}

  /** The child waiting, if one is. */
  get waiting(): ChildProcess | null {
    return this.child;
  }

  /** Keeps `child` waiting, for `warmMs` from now (the one waiting already too). */
  park(child: ChildProcess): void {
    if (this.child !== child) {
      this.drop();
      child.unref();
      child.channel?.unref();
      (child.stderr as { unref?: () => void } | null)?.unref?.();
      // Once per child: one kept after each of its jobs would otherwise add a listener each time.
      if (!this.watched.has(child)) {
        this.watched.add(child);
        child.once('exit', () => { if (this.child === child) this.child = null; });
      }
      this.child = child;
    }
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.drop(), this.warmMs);
    this.timer.unref();
  }

  /** The waiting child if it can still take a job, else null (a dead one is cleared). */
  take(): ChildProcess | null {
    const child = this.child;
    this.child = null;
    clearTimeout(this.timer);
    if (child && isUsable(child)) {
      child.ref();
      child.channel?.ref();
      (child.stderr as { ref?: () => void } | null)?.ref?.();
      return child;
    }
    child?.kill('SIGKILL');
    return null;
  }

  drop(): void {
    clearTimeout(this.timer);
    this.child?.kill('SIGKILL');
    this.child = null;
  }
}

/**
 * Turns an upload's bytes into text for the model. All parsing happens in a child process at the
 * lowest CPU priority, with a heap cap, an RSS cap and a deadline, so a hostile or huge file
 * (PDF, deep JSON, megabytes of text) can neither block nor starve the event loop nor exhaust the
 * server: the child is simply killed.
 */
@Injectable()
export class TextExtractor implements OnApplicationShutdown {
  private readonly limits: ExtractorLimits;
  /**
   * PDFs, and everything else: a text file takes milliseconds to a second or two, a PDF up to its
   * 30 s of CPU, and text files waited behind PDFs.
   */
  private readonly lanes: { pdf: Lane; text: Lane };
  /**
   * A child started in advance, waiting for a job: starting node and loading the tokenizer's tables
   * took ~0.5 s of every upload (a 12-byte text file answered in 0.6 s), and people attach files in
   * a row. One is started after each job and kept for `warmMs`; a PDF still gets a process no job has used.
   */
  private readonly spare: WaitingChild;
  /**
   * The process that read the last text file, kept for the next one: a fresh process per file cost
   * ~0.4 s of each upload (node and the tokenizer's tables, at nice 19), and the spare started after a
   * job was still loading when the next file of a row arrived. Text files only: a PDF always gets a
   * process no other file has used (see extract.worker.mjs).
   */
  private readonly textChild: WaitingChild;
  /** Text files each kept process has read. */
  private readonly jobsDone = new WeakMap<ChildProcess, number>();
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
    this.spare = new WaitingChild(this.limits.warmMs);
    this.textChild = new WaitingChild(this.limits.warmMs);
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
      const result = await this.runWorker(bytes, fileType, request.signal);
      outcome = 'ok';
      return result;
    } catch (err) {
      throw request.signal?.aborted ? clientGone() : err;
    } finally {
      this.metrics.observeExtraction(performance.now() - started, fileType, outcome);
      this.release(lane);
      this.keepSpare();
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
    this.spare.drop();
    this.textChild.drop();
  }

  /** A new child for the extraction worker, at the lowest priority; its stderr tail is kept for the heap-limit message. */
  private startChild(): ChildProcess {
    const child = fork(EXTRACT_WORKER_PATH, [], {
      ...childLauncher([
        `--max-old-space-size=${this.limits.maxMemoryMb}`,
        '--max-semi-space-size=16',
        '--stack-size=4000',
        // Code generation from strings off in the whole process, on top of pdf.js's isEvalSupported:false.
        '--disallow-code-generation-from-strings',
      ]),
      // None of the server's secrets (session secret, API keys) and no NODE_OPTIONS in the child.
      env: { NODE_ENV: process.env.NODE_ENV ?? 'production' },
      serialization: 'advanced',
      // pdf.js warns on stdout/stderr about odd fonts; those are not our logs. stderr is read
      // for the fatal heap-limit message only.
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    if (child.pid !== undefined) lowerPriority(child.pid);
    child.stderr?.setEncoding('utf8');
    // Between jobs (waiting in advance, or kept after a text file) stderr is drained and errors are
    // swallowed; each job adds its own listeners and removes them when it ends.
    child.stderr?.on('data', () => undefined);
    child.on('error', () => undefined);
    return child;
  }

  /** For a text file: the process kept after the last one if it is still alive, else as for any file. */
  private takeTextChild(): ChildProcess {
    return this.textChild.take() ?? this.takeChild();
  }

  /**
   * After a text file the child said it stays for (`again`): kept for the next one for `warmMs`,
   * unless it has read its share of files, grew too big, or one is kept already.
   */
  private keepTextChild(child: ChildProcess): void {
    const rss = child.pid !== undefined ? residentBytes(child.pid) : null;
    if (this.isClosed || this.limits.warmMs <= 0 || this.textChild.waiting !== null || !isUsable(child)
      || (this.jobsDone.get(child) ?? 0) >= TEXT_JOBS_PER_CHILD || (rss !== null && rss > KEPT_CHILD_MAX_RSS)) {
      child.kill('SIGKILL');
      return;
    }
    this.textChild.park(child);
  }

  /** The spare if it is still alive and waiting, else a new child. */
  private takeChild(): ChildProcess {
    return this.spare.take() ?? this.startChild();
  }

  /** Starts a child for the next job unless one waits already; it goes after `warmMs` without a job. */
  private keepSpare(): void {
    if (this.isClosed || this.limits.warmMs <= 0) return;
    this.spare.park(this.spare.waiting ?? this.startChild());
  }

  private runWorker(bytes: Buffer, fileType: string, signal?: AbortSignal): Promise<Extraction> {
    const { maxPages, maxChars, timeoutMs, maxMemoryMb } = this.limits;
    const isText = fileType !== '.pdf';
    return new Promise<Extraction>((resolve, reject) => {
      const child = isText ? this.takeTextChild() : this.takeChild();
      const jobs = (this.jobsDone.get(child) ?? 0) + 1;
      this.jobsDone.set(child, jobs);
      let settled = false;
      let stderrTail = '';
      /** Ends the job; the child is kept for the next text file only when its clean answer said it stays. */
      const finish = (fn: () => void, keep = false): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        clearInterval(watchdog);
        signal?.removeEventListener('abort', stop);
        child.stderr?.off('data', onStderr);
        child.off('message', onMessage);
        child.off('error', onError);
        child.off('close', onClose);
        fn();
        if (keep) this.keepTextChild(child);
        else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      };
      // The client is gone: its file is not read on for nobody.
      const stop = (): void => finish(() => reject(clientGone()));
      const tooBig = (): AppException => new AppException(ErrorCode.FileProcessingError,
        `Extracting the text needs more than ${maxMemoryMb} MB of memory; the file is too large or too complex`);
      const failed = (): AppException => new AppException(ErrorCode.FileProcessingError, 'The file could not be processed');
      const tooSlow = (): AppException => new AppException(ErrorCode.FileProcessingError,
        `Extracting the text took longer than ${Math.round(timeoutMs / 1000)} s; the file is too large or too complex`);
      // The deadline counts the child's CPU time: at nice 19 on a busy server it may wait for the
      // CPU much longer than it works, and a big PDF must not fail because the server was busy.
      // Wall-clock time only stops a child that makes no progress at all (backstop).
      // From the job on: a child started in advance has used some CPU already, loading the tokenizer.
      const cpuAtStart = child.pid !== undefined ? processCpuMs(child.pid) : null;
      const hasCpuClock = cpuAtStart !== null;
      const timer = setTimeout(() => finish(() => reject(tooSlow())), hasCpuClock ? timeoutMs * WALL_CLOCK_BACKSTOP : timeoutMs);
      // --max-old-space-size caps the JS heap only. Decoded PDF streams live in ArrayBuffers
      // outside it (a 1 MB PDF can inflate a 1 GB content stream), so the child's resident
      // memory is watched as well.
      const budget = (maxMemoryMb + PROCESS_OVERHEAD_MB) * 1024 * 1024;
      const watchdog = setInterval(() => {
        if (child.pid === undefined) return;
        const rss = residentBytes(child.pid);
        if (rss !== null && rss > budget) finish(() => reject(tooBig()));
        const cpu = hasCpuClock ? processCpuMs(child.pid) : null;
        if (cpu !== null && cpu - (cpuAtStart ?? 0) > timeoutMs) finish(() => reject(tooSlow()));
      }, 20);
      const onStderr = (chunk: string): void => { stderrTail = (stderrTail + chunk).slice(-4096); };
      const onMessage = (reply: WorkerReply): void => finish(() => {
        if (reply.ok) {
          resolve({ text: reply.text, pages: reply.pages, truncated: reply.truncated, tokenCount: reply.tokenCount });
        } else {
          const code = reply.kind === 'unsupported' ? ErrorCode.UnsupportedFileType : ErrorCode.FileProcessingError;
          reject(new AppException(code, reply.message));
        }
      }, isText && reply.again === true);
      const onError = (): void => finish(() => reject(failed()));
      // Exit before a reply: a crash, or V8 aborting at the heap limit (it says so on stderr,
      // which may still be flushing when 'exit' fires, hence 'close').
      const onClose = (): void => finish(() => reject(/heap out of memory|Reached heap limit/i.test(stderrTail) ? tooBig() : failed()));
      child.stderr?.on('data', onStderr);
      child.on('message', onMessage);
      child.on('error', onError);
      child.on('close', onClose);
      signal?.addEventListener('abort', stop, { once: true });
      if (signal?.aborted) {
        stop();
        return;
      }
      // A copy the child owns: the caller's buffer may be a view into a pooled allocation.
      const again = isText && this.limits.warmMs > 0 && jobs < TEXT_JOBS_PER_CHILD;
      child.send({ bytes: new Uint8Array(bytes), fileType, maxPages, maxChars, again }, (err) => {
        if (err) finish(() => reject(failed()));
      });
    });
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
