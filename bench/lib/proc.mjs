// Reads a process's resident memory and open file descriptors from /proc (Linux only).
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export function rssBytes(pid) {
  try {
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : NaN;
  } catch {
    return NaN; // the process is gone
  }
}

export function openFds(pid) {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return NaN;
  }
}

/** Open fds by kind (socket, pipe, anon_inode, file), for leak reports. */
export function fdKinds(pid) {
  const kinds = {};
  let names = [];
  try { names = readdirSync(`/proc/${pid}/fd`); } catch { return kinds; }
  for (const fd of names) {
    let target = '?';
    try { target = readlinkSync(`/proc/${pid}/fd/${fd}`); } catch { /* closed meanwhile */ }
    const kind = target.startsWith('socket:') ? 'socket' : target.startsWith('pipe:') ? 'pipe'
      : target.startsWith('anon_inode:') ? target.slice(11) : 'file';
    kinds[kind] = (kinds[kind] ?? 0) + 1;
  }
  return kinds;
}

/** CPU time (user+system, ms) the process has used so far. */
export function cpuMs(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    // utime and stime are fields 14 and 15 (1-based) of the whole line; 12 and 13 after "pid (comm) ".
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // USER_HZ is 100 on Linux
  } catch {
    return NaN;
  }
}

/**
 * How often the process's main thread (its thread id is the process id) has been switched out while it could still
 * run (`nonvoluntary_ctxt_switches`): another thread or process took its core. Each time, whatever request or token it
 * was handling waits for the core back.
 */
export function preemptions(pid) {
  try {
    const m = /nonvoluntary_ctxt_switches:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/task/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

/**
 * The whole machine's CPU time so far, all cores (ms): busy (user, nice, system, irq, softirq), idle (idle,
 * iowait) and steal (time the hypervisor gave this VM's virtual CPUs to someone else).
 */
export function machineCpuMs() {
  try {
    const fields = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number);
    const [user, nice, system, idle, iowait, irq, softirq, steal = 0] = fields;
    const ms = (ticks) => (ticks * 1000) / 100; // USER_HZ
    return { busy: ms(user + nice + system + irq + softirq), idle: ms(idle + iowait), steal: ms(steal) };
  } catch {
    return { busy: NaN, idle: NaN, steal: NaN };
  }
}
