import type { AppConfig } from '../../config/app-config.js';
import type { CompletionRequest } from './chat-provider.js';

/** What the upstream worker starts with. */
export interface UpstreamWorkerData {
  llm: AppConfig['llm'];
  /** How long a stream's later token may wait for others to leave in the same message (ms). */
  coalesceMs: number;
}

/** What the main thread asks of the upstream worker. */
export type ToUpstreamWorker =
  | { op: 'stream'; id: number; request: CompletionRequest }
  /** Build the request now; send it on `send`, drop it on `abort`. */
  | { op: 'prepare'; id: number; request: CompletionRequest }
  | { op: 'send'; id: number }
  | { op: 'abort'; id: number }
  | { op: 'close' };

/**
 * What the worker reports, batched: one flat array per message, ENTRY_SIZE slots per entry
 * ([stream id, code, a, b, c]), so one message carries every chunk read since the last one
 * (upstream.worker.ts decides when it leaves) and the structured clone copies primitives only.
 */
export type FromUpstreamWorker = (number | string | null)[];

export const ENTRY_SIZE = 5;

export const Report = {
  /** a: the token's text. */
  Token: 0,
  /** a: the finish reason. */
  Finish: 1,
  /** a: prompt tokens, b: completion tokens. */
  Usage: 2,
  /** The completion ended with [DONE]. */
  Done: 3,
  /** a: the ProviderFailureKind, b: the message, c: the HTTP status or null. */
  Failed: 4,
  /** The worker's provider threw something that is not a ProviderError; b: its message. */
  Crashed: 5,
} as const;
export type Report = (typeof Report)[keyof typeof Report];
