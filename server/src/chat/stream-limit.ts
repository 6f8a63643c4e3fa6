import { Inject, Injectable } from '@nestjs/common';
import { rateLimitExceeded } from '../common/rate-limit.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';

/** What a refused stream's Retry-After says: answers take seconds, and a closed tab frees its slot at once. */
const RETRY_AFTER_SECONDS = 5;

/**
 * The SSE streams a session holds open on this instance (STREAM_MAX_PER_SESSION). Each open
 * stream holds a socket, a file descriptor and a subscription for as long as its answer runs, and
 * sessions are free: without a cap one session could hold hundreds. A slot is taken when a stream
 * route starts, before anything is checked or stored, and given back when the request fails
 * before streaming or when the stream closes (end, error, client gone). Per instance on purpose:
 * what it protects (sockets, descriptors, memory) is per instance, and a Map costs nothing per token.
 */
@Injectable()
export class StreamLimit {
  private readonly max: number;
  private readonly open = new Map<string, number>();

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    this.max = config.stream.maxPerSession;
  }

  /**
   * Takes one of the session's stream slots, or throws 429 RATE_LIMIT_EXCEEDED (with Retry-After)
   * when all are in use. Returns the slot's release, which only counts once however often it is called.
   */
  take(sessionId: string): () => void {
    const count = this.open.get(sessionId) ?? 0;
    if (count >= this.max) {
      throw rateLimitExceeded(RETRY_AFTER_SECONDS, this.max,
        `You already have ${this.max} answers streaming (the most one session may have open at once); close one or wait for one to finish`);
    }
    this.open.set(sessionId, count + 1);
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      const left = (this.open.get(sessionId) ?? 1) - 1;
      if (left > 0) this.open.set(sessionId, left);
      else this.open.delete(sessionId);
    };
  }

  /** Streams the session has open on this instance. */
  openFor(sessionId: string): number {
    return this.open.get(sessionId) ?? 0;
  }
}
