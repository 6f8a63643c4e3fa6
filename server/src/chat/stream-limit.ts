import { Inject, Injectable } from '@nestjs/common';
import { SessionSlots } from '../common/session-slots.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';

/** What a refused stream's Retry-After says: answers take seconds, and a closed tab frees its slot at once. */
const RETRY_AFTER_SECONDS = 5;

/**
 * The SSE streams a session holds open on this instance (STREAM_MAX_PER_SESSION). Each open
 * stream holds a socket, a file descriptor and a subscription for as long as its answer runs, and
 * sessions are free: without a cap one session could hold hundreds. A slot is taken when a stream
 * route starts, before anything is checked or stored, and given back when the request fails
 * before streaming or when the response has really ended (writeSse's onClose: its last bytes
 * handed to the system, the client gone, or cut for reading nothing), not when its events end: a
 * client that does not read would otherwise open stream after stream. Per instance on purpose:
 * what it protects (sockets, descriptors, memory) is per instance, and a Map costs nothing per token.
 */
@Injectable()
export class StreamLimit {
  private readonly slots: SessionSlots;

  constructor(@Inject(APP_CONFIG) config: AppConfig) {
    const max = config.stream.maxPerSession;
    this.slots = new SessionSlots(max, RETRY_AFTER_SECONDS,
      `You already have ${max} answers streaming (the most one session may have open at once); close one or wait for one to finish`);
  }

  /** Takes one of the session's stream slots (429 when all are in use); returns its release. */
  take(sessionId: string): () => void {
    return this.slots.take(sessionId);
  }

  /** Streams the session has open on this instance. */
  openFor(sessionId: string): number {
    return this.slots.heldBy(sessionId);
  }
}
