import { type ChildProcess, fork, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { constants as osConstants, setPriority } from 'node:os';
import { MAX_TIMER_MS } from '../common/max-timer.js';

/**
 * The extraction's child processes: started, kept, given jobs, watched and killed. Runs on the extraction
 * host's thread (extraction-host.worker.ts), never on the event loop of the streams: starting a process
 * blocks its caller until the child has exec'd (4–16 ms here, once per PDF), and a job's watchdog reads
 * /proc every 20 ms.
 */

/** What the child found: its text, and what the server tells about it. */
export interface Extraction {
  text: string;
  /** Pages of a PDF, null for other types. */
  pages: number | null;
  /** The text was cut at the configured maximum (a visible marker says so). */
  truncated: boolean;
  tokenCount: number;
}

/** How a job ended: the text, the child's own refusal, or what the pool saw (too much memory or CPU, a crash). */
export type JobOutcome =
  | ({ ok: true } & Extraction)
  | { ok: false; kind: 'unsupported' | 'processing'; message: string }
  | { ok: false; kind: 'too-big' | 'too-slow' | 'failed' };

/** `again`: the child stays for another text file (it asked to, and nothing unexpected happened). */
type WorkerReply = { again?: boolean } & (
  | ({ ok: true } & Extraction)
  | { ok: false; kind: 'unsupported' | 'processing'; message: string });

export interface ChildLimits {
  maxPages: number;
  maxChars: number;
  timeoutMs: number;
  maxMemoryMb: number;
  /** How long a process started in advance waits for the next job after one (0: none started). */
  warmMs: number;
}

/** What the extraction host is started with. */
export interface ExtractionHostData {
  limits: ChildLimits;
  /** The child's entry (extract.worker.mjs): next to text-extractor's own file, in the sources or the build. */
  childEntry: string;
}

/** Main thread → extraction host. */
export type ToExtractionHost =
  | { op: 'job'; id: number; bytes: Uint8Array; fileType: string }
  | { op: 'cancel'; id: number }
  | { op: 'keep-spare' }
  | { op: 'close' };

/** Extraction host → main thread: a job's end. */
export interface FromExtractionHost {
  id: number;
  outcome: JobOutcome;
}

/**
 * Text files one process reads before it is replaced, and the resident memory above which it is
 * not kept after one (a 10 MB file's strings and token arrays stay in its heap until collected).
 */
const TEXT_JOBS_PER_CHILD = 200;
const KEPT_CHILD_MAX_RSS = 192 * 1024 * 1024;

/** What the child costs beyond its heap (node itself, pdf.js loaded, young generation): ~200 MB measured on a 500-page PDF. */
const PROCESS_OVERHEAD_MB = 256;

/** Linux reports process times in /proc in clock ticks of 1/100 s (USER_HZ) on every architecture Node runs on. */
const TICKS_PER_SECOND = 100;
/** Without a CPU clock of the child, the deadline is wall-clock; with one, wall-clock only as a backstop, this many times it. */
const WALL_CLOCK_BACKSTOP = 4;

/** Resident memory of a process from /proc (Linux); null where that is not available. */
function residentBytes(pid: number): number | null {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

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
 * The first of `paths` that exists and can start a program under SCHED_IDLE here, else null. Tried once (on the
 * extraction host's thread): where a sandbox refuses the policy, chrt exits with an error and every child started
 * through it would fail, so the children are then started without it (at nice 19).
 */
export function usableChrt(paths: readonly string[]): string | null {
  const found = paths.find((p) => existsSync(p));
  if (found === undefined) return null;
  const probe = spawnSync(found, ['--idle', '0', process.execPath, '--version'], { stdio: 'ignore', timeout: 10_000 });
  return probe.status === 0 ? found : null;
}

/**
 * How the child is started: through `chrt --idle 0` on Linux when util-linux is there, else node itself.
 * Nice 19 alone left the streams' threads waiting behind an extraction: Linux counts a core running only
 * SCHED_IDLE work as free when it places a thread that wakes, and such a thread takes the core at once,
 * where a niced child still holds it for part of a time slice (and nice counts only within the server's
 * autogroup where those are on).
 */
export function childLauncher(nodeArgs: string[]): { execPath: string; execArgv: string[] } {
  if (chrtPath === undefined) chrtPath = process.platform === 'linux' ? usableChrt(CHRT_PATHS) : null;
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
 * Runs jobs in child processes at the lowest CPU priority, with a heap cap, an RSS cap and a deadline:
 * a hostile or huge file (PDF, deep JSON, megabytes of text) costs its child, which is simply killed.
 * A PDF always gets a process no other file has used; text files share one kept process (see extract.worker.mjs).
 */
export class ChildPool {
  /**
   * A child started in advance, waiting for a job: starting node and loading the tokenizer's tables
   * took ~0.5 s of every upload (a 12-byte text file answered in 0.6 s), and people attach files in
   * a row. One is started after each job and kept for `warmMs`; a PDF still gets a process no job has used.
   */
  private readonly spare: WaitingChild;
  /**
   * The process that read the last text file, kept for the next one: a fresh process per file cost
   * ~0.4 s of each upload (node and the tokenizer's tables, at nice 19), and the spare started after a
   * job was still loading when the next file of a row arrived. Text files only.
   */
  private readonly textChild: WaitingChild;
  /** Text files each kept process has read. */
  private readonly jobsDone = new WeakMap<ChildProcess, number>();
  /** Jobs running, by id: how each is stopped. */
  private readonly running = new Map<number, () => void>();
  private isClosed = false;

  constructor(private readonly limits: ChildLimits, private readonly childEntry: string) {
    this.spare = new WaitingChild(limits.warmMs);
    this.textChild = new WaitingChild(limits.warmMs);
  }

  /** Stops a running job: its child is killed and its outcome never reported. */
  cancel(id: number): void {
    this.running.get(id)?.();
  }

  /** Starts a child for the next job unless one waits already; it goes after `warmMs` without a job. */
  keepSpare(): void {
    if (this.isClosed || this.limits.warmMs <= 0) return;
    this.spare.park(this.spare.waiting ?? this.startChild());
  }

  /** No job is running. */
  get idle(): boolean {
    return this.running.size === 0;
  }

  /** No child is kept or started in advance any more; the jobs running finish and report as before. */
  close(): void {
    this.isClosed = true;
    this.spare.drop();
    this.textChild.drop();
  }

  /** Runs one job; resolves with its outcome (never rejects), or never when it is cancelled. */
  run(id: number, bytes: Uint8Array, fileType: string): Promise<JobOutcome> {
    const { maxPages, maxChars, timeoutMs, maxMemoryMb } = this.limits;
    const isText = fileType !== '.pdf';
    return new Promise<JobOutcome>((resolve) => {
      let child: ChildProcess;
      try {
        child = isText ? this.takeTextChild() : this.takeChild();
      } catch {
        resolve({ ok: false, kind: 'failed' });
        return;
      }
      const jobs = (this.jobsDone.get(child) ?? 0) + 1;
      this.jobsDone.set(child, jobs);
      let settled = false;
      let stderrTail = '';
      /** Ends the job; the child is kept for the next text file only when its clean answer said it stays. */
      const finish = (outcome: JobOutcome | null, keep = false): void => {
        if (settled) return;
        settled = true;
        this.running.delete(id);
        clearTimeout(timer);
        clearInterval(watchdog);
        child.stderr?.off('data', onStderr);
        child.off('message', onMessage);
        child.off('error', onError);
        child.off('close', onClose);
        if (outcome) resolve(outcome);
        if (keep) this.keepTextChild(child);
        else if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      };
      // The deadline counts the child's CPU time: at the lowest priority on a busy server it may wait for
      // the CPU much longer than it works, and a big PDF must not fail because the server was busy.
      // Wall-clock time only stops a child that makes no progress at all (backstop).
      // From the job on: a child started in advance has used some CPU already, loading the tokenizer.
      const cpuAtStart = child.pid !== undefined ? processCpuMs(child.pid) : null;
      const hasCpuClock = cpuAtStart !== null;
      const timer = setTimeout(() => finish({ ok: false, kind: 'too-slow' }), hasCpuClock ? Math.min(timeoutMs * WALL_CLOCK_BACKSTOP, MAX_TIMER_MS) : timeoutMs);
      // --max-old-space-size caps the JS heap only. Decoded PDF streams live in ArrayBuffers
      // outside it (a 1 MB PDF can inflate a 1 GB content stream), so the child's resident
      // memory is watched as well.
      const budget = (maxMemoryMb + PROCESS_OVERHEAD_MB) * 1024 * 1024;
      const watchdog = setInterval(() => {
        if (child.pid === undefined) return;
        const rss = residentBytes(child.pid);
        if (rss !== null && rss > budget) finish({ ok: false, kind: 'too-big' });
        const cpu = hasCpuClock ? processCpuMs(child.pid) : null;
        if (cpu !== null && cpu - (cpuAtStart ?? 0) > timeoutMs) finish({ ok: false, kind: 'too-slow' });
      }, 20);
      const onStderr = (chunk: string): void => { stderrTail = (stderrTail + chunk).slice(-4096); };
      const onMessage = (reply: WorkerReply): void => {
        const outcome: JobOutcome = reply.ok
          ? { ok: true, text: reply.text, pages: reply.pages, truncated: reply.truncated, tokenCount: reply.tokenCount }
          : { ok: false, kind: reply.kind, message: reply.message };
        finish(outcome, isText && reply.again === true);
      };
      const onError = (): void => finish({ ok: false, kind: 'failed' });
      // Exit before a reply: a crash, or V8 aborting at the heap limit (it says so on stderr,
      // which may still be flushing when 'exit' fires, hence 'close').
      const onClose = (): void => finish({ ok: false, kind: /heap out of memory|Reached heap limit/i.test(stderrTail) ? 'too-big' : 'failed' });
      child.stderr?.on('data', onStderr);
      child.on('message', onMessage);
      child.on('error', onError);
      child.on('close', onClose);
      this.running.set(id, () => finish(null));
      const again = isText && this.limits.warmMs > 0 && jobs < TEXT_JOBS_PER_CHILD;
      child.send({ bytes, fileType, maxPages, maxChars, again }, (err) => {
        if (err) finish({ ok: false, kind: 'failed' });
      });
    });
  }

  /** A new child for the extraction worker, at the lowest priority; its stderr tail is kept for the heap-limit message. */
  private startChild(): ChildProcess {
    const child = fork(this.childEntry, [], {
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
}
