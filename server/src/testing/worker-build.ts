import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { transformSync } from '@swc/core';
import { SWC_JSC } from './swc-options.js';

const SRC = resolve(__dirname, '..');
/** Inside the repository's node_modules, so the compiled code finds its packages ('openai'). */
export const WORKER_BUILD_DIR = resolve(SRC, '..', '..', 'node_modules', '.cache', 'parley-test-workers');
/** The upstream worker as the tests run it (ThreadedChatProvider's worker file under Vitest). */
export const TEST_UPSTREAM_WORKER = join(WORKER_BUILD_DIR, 'chat', 'providers', 'upstream.worker.js');
/** The extraction host as the tests run it (TextExtractor's thread under Vitest). */
export const TEST_EXTRACTION_HOST = join(WORKER_BUILD_DIR, 'files', 'extraction-host.worker.js');

/**
 * Compiles a worker thread's TypeScript entry and the project files it imports to CommonJS
 * under WORKER_BUILD_DIR, as `tsc` does for the build. Tests need it because a worker thread
 * runs plain Node: Vitest's transform does not reach it, and transpiling inside the worker
 * (module hooks with SWC) crashes Node 20 once a second worker loads SWC's native addon.
 */
export function buildWorker(entry: string): void {
  const seen = new Set<string>();
  const queue = [entry];
  while (queue.length > 0) {
    const file = queue.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const { code } = transformSync(readFileSync(file, 'utf8'), {
      filename: file,
      module: { type: 'commonjs' },
      jsc: SWC_JSC,
      sourceMaps: 'inline',
    });
    const out = join(WORKER_BUILD_DIR, relative(SRC, file).replace(/\.ts$/, '.js'));
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, code);
    for (const m of code.matchAll(/require\("(\.{1,2}\/[^"]+)\.js"\)/g)) queue.push(resolve(dirname(file), `${m[1]}.ts`));
  }
}

/** Compiles every worker the tests start (global setup, once per run). */
export function buildTestWorkers(): void {
  rmSync(WORKER_BUILD_DIR, { recursive: true, force: true });
  buildWorker(join(SRC, 'chat', 'providers', 'upstream.worker.ts'));
  buildWorker(join(SRC, 'files', 'extraction-host.worker.ts'));
}
