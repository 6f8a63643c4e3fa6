import { rateLimitExceeded } from './rate-limit.js';

/**
 * A per-session count of something held (open streams, uploads in flight) against a maximum: `take`
 * counts one or refuses with 429 RATE_LIMIT_EXCEEDED (Retry-After, the limit, a message saying
 * what is held); its release gives it back once, however often it is called. In memory, per
 * instance: what such limits protect (sockets, descriptors, the extraction queue) is per instance.
 */
export class SessionSlots {
  private readonly held = new Map<string, number>();

  constructor(private readonly max: number, private readonly retryAfterSeconds: number, private readonly refusal: string) {}

  take(sessionId: string): () => void {
    const count = this.held.get(sessionId) ?? 0;
    if (count >= this.max) throw rateLimitExceeded(this.retryAfterSeconds, this.max, this.refusal);
    this.held.set(sessionId, count + 1);
    let isReleased = false;
    return () => {
      if (isReleased) return;
      isReleased = true;
      const left = (this.held.get(sessionId) ?? 1) - 1;
      if (left > 0) this.held.set(sessionId, left);
      else this.held.delete(sessionId);
    };
  }

  /** What the session holds on this instance. */
  heldBy(sessionId: string): number {
    return this.held.get(sessionId) ?? 0;
  }
}
