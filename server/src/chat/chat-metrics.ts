import { Injectable } from '@nestjs/common';
import type { MessageStatus } from '../conversations/message.entity.js';

export interface ChatMetricsSnapshot {
  /** Gauge: SSE connections open now. */
  openStreams: number;
  /** Counter: SSE connections ever opened (sends, regenerations and re-attachments). */
  streamsTotal: number;
  /** Gauge: generations running now on this instance. */
  activeGenerations: number;
  /** Counter: generations started. */
  generationsStarted: number;
  /** Counter: generations ended, by final status. */
  generationsEnded: Record<Exclude<MessageStatus, 'streaming'>, number>;
  /** Counter: upstream tokens streamed. */
  tokensTotal: number;
  /** Sum and count of time to first token (ms), for an average or a histogram later. */
  firstTokenMs: { sum: number; count: number };
  /** Counter: failed upstream calls, by `kind` or `kind_status` (e.g. http_429). */
  upstreamErrors: Record<string, number>;
}

/** Replies failed by the model in a row, with none answered between, after which health reports it down. */
export const MODEL_FAILURES_FOR_DOWN = 3;

/**
 * Plain counters and gauges of the chat module. The metrics issue exposes them with prom-client:
 * read `snapshot()` in a collect() callback, or replace the method bodies with prom-client calls.
 */
@Injectable()
export class ChatMetrics {
  private modelFailuresInARow = 0;
  private readonly state: ChatMetricsSnapshot = {
    openStreams: 0,
    streamsTotal: 0,
    activeGenerations: 0,
    generationsStarted: 0,
    generationsEnded: { complete: 0, stopped: 0, interrupted: 0, failed: 0 },
    tokensTotal: 0,
    firstTokenMs: { sum: 0, count: 0 },
    upstreamErrors: {},
  };

  streamOpened(): void {
    this.state.openStreams++;
    this.state.streamsTotal++;
  }

  streamClosed(): void {
    this.state.openStreams--;
  }

  generationStarted(): void {
    this.state.activeGenerations++;
    this.state.generationsStarted++;
  }

  firstToken(ms: number): void {
    this.state.firstTokenMs.sum += ms;
    this.state.firstTokenMs.count++;
  }

  tokens(count: number): void {
    this.state.tokensTotal += count;
  }

  generationEnded(status: Exclude<MessageStatus, 'streaming'>): void {
    this.state.activeGenerations--;
    this.state.generationsEnded[status]++;
  }

  /** Replies of a dead instance (or of this one's previous run) ended as `interrupted` by a lease sweep. */
  generationsSwept(count: number): void {
    this.state.generationsEnded.interrupted += count;
  }

  /** An upstream call failed (a reply or a model title); `code` is the failure kind, with the HTTP status when there is one. */
  upstreamFailed(code: string): void {
    this.state.upstreamErrors[code] = (this.state.upstreamErrors[code] ?? 0) + 1;
  }

  /**
   * A reply's call to the model ended: answered (whole, or cut by a limit) or failed (its ProviderError).
   * Stops, shutdowns and deleted conversations say nothing of the model and are not counted.
   */
  modelAnswered(isOk: boolean): void {
    this.modelFailuresInARow = isOk ? 0 : this.modelFailuresInARow + 1;
  }

  /**
   * The model failed the last MODEL_FAILURES_FOR_DOWN replies in a row with none answered since (a wrong key or model
   * name, the server unreachable): health says `degraded`; the next answered reply clears it.
   */
  get isModelFailing(): boolean {
    return this.modelFailuresInARow >= MODEL_FAILURES_FOR_DOWN;
  }

  snapshot(): ChatMetricsSnapshot {
    return structuredClone(this.state);
  }
}
