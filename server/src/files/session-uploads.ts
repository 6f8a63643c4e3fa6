import { Injectable } from '@nestjs/common';
import { SessionSlots } from '../common/session-slots.js';

/**
 * Uploads one session may have in flight at once on this instance: one file being read (its
 * text extracted) and one waiting for it. Extraction runs a file or two at a time for the whole
 * server with a shared queue (text-extractor.ts): a session sending dozens of slow PDFs at once
 * filled that queue and every other user's uploads were refused as busy.
 */
export const UPLOADS_IN_FLIGHT_PER_SESSION = 2;

/** A file is read in seconds (at most PDF_TIMEOUT_MS of CPU); asking again sooner is pointless. */
const RETRY_AFTER_SECONDS = 5;

/**
 * Each session's uploads in flight, from the moment the upload's file part is accepted (before a
 * byte of it is stored) until its request is over, and their extractions one at a time. Per
 * instance, as the extraction queue it shares out is.
 */
@Injectable()
export class SessionUploads {
  private readonly inFlight = new SessionSlots(UPLOADS_IN_FLIGHT_PER_SESSION, RETRY_AFTER_SECONDS, 'Two of your files are still being read; try again when they are done');
  /** Per session, the end of its last extraction (settled, never rejected): the next one starts after it. */
  private readonly extracting = new Map<string, Promise<void>>();

  /** Counts one upload of the session in flight (429 when it has UPLOADS_IN_FLIGHT_PER_SESSION already); returns its release. */
  take(sessionId: string): () => void {
    return this.inFlight.take(sessionId);
  }

  /** The session's uploads in flight on this instance. */
  inFlightFor(sessionId: string): number {
    return this.inFlight.heldBy(sessionId);
  }

  /**
   * Runs `extract` once the session's previous extraction is over, so a session holds at most
   * one place in the shared extraction queue (its other upload waits here, not there).
   */
  async oneAtATime<T>(sessionId: string, extract: () => Promise<T>): Promise<T> {
    const previous = this.extracting.get(sessionId) ?? Promise.resolve();
    const run = previous.then(extract);
    const done = run.then(() => undefined, () => undefined);
    this.extracting.set(sessionId, done);
    try {
      return await run;
    } finally {
      if (this.extracting.get(sessionId) === done) this.extracting.delete(sessionId);
    }
  }
}
