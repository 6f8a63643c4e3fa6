import { readdirSync, readFileSync } from 'node:fs';

/** Processes of this test process, read from /proc (Linux): the extraction workers it forks. */

/** The pid of a running child of this process whose command line contains `needle`, from /proc. */
export function childRunning(needle: string): number | undefined {
  return childrenRunning(needle)[0];
}

/** Whether a process runs (a zombie, exited but not yet reaped, counts as gone). */
export function isAlive(pid: number): boolean {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'latin1'));
  } catch {
    return false;
  }
}

/** The pids of this process's running children whose command line contains `needle`. */
export function childrenRunning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && isAlive(Number(entry)) && readFileSync(`/proc/${entry}/cmdline`, 'latin1').includes(needle)) pids.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

/** Linux's SCHED_IDLE scheduling policy, as /proc/<pid>/stat gives it. */
export const SCHED_IDLE = 5;

/** A process's scheduling policy (field 41 of /proc/<pid>/stat: 0 normal, 5 SCHED_IDLE). */
export function schedulingPolicy(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[41 - 3]);
}
