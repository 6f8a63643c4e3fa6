// Forks a loopback helper server of the harness (the upstream, the floor relay) in its own process,
// so its event loop and CPU are apart from the server under test and the measuring client. The
// child sends { ready: true, port } once it listens and exits when its IPC channel closes.
import { fork } from 'node:child_process';

/** Resolves with { port, pid, stop() } once `file --serve` listens. */
export async function forkService(file, env, name) {
  const child = fork(file, ['--serve'], {
    env: { PATH: process.env.PATH, ...Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const port = await new Promise((res, rej) => {
    child.once('message', (m) => (m?.ready ? res(m.port) : rej(new Error(`${name} failed`))));
    child.once('exit', (code) => rej(new Error(`${name} exited ${code}`)));
  });
  return {
    port, pid: child.pid,
    async stop() {
      if (child.exitCode !== null) return;
      const done = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await done;
    },
  };
}
