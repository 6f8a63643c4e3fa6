import { Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ShutdownService } from '../health/shutdown.service.js';
import type { SseStream } from './sse-writer.js';

/**
 * How long a stream ended at shutdown has to have its last bytes read before it is cut: app.close()
 * waits for every connection, and main.ts's watchdog exits 1 ten seconds after the grace period.
 */
export const SHUTDOWN_STREAM_END_WAIT_MS = 1_000;

/**
 * The SSE streams open on this instance, so that a shutdown can end them. The graceful drain lets
 * this instance's own generations end, and with them their streams; a stream following an answer
 * another instance generates (the Redis registry's followers, a row polled until it ends) would
 * stay open as long as that answer runs, holding app.close() until the watchdog killed the
 * process. Once the drainers are done, every stream still open is ended cleanly, without a final
 * event: the client resumes after its Last-Event-ID, through the gateway, on another instance.
 */
@Injectable()
export class OpenStreams implements OnApplicationBootstrap {
  private readonly logger = new Logger(OpenStreams.name);
  private readonly streams = new Set<SseStream>();
  private isClosing = false;
  private onEmpty?: () => void;

  constructor(private readonly moduleRef: ModuleRef) {}

  onApplicationBootstrap(): void {
    // Looked up rather than imported, as GenerationService does: chat does not depend on health.
    try {
      this.moduleRef.get(ShutdownService, { strict: false }).registerCloser('open-streams', () => this.endAll());
    } catch {
      this.logger.debug('no ShutdownService: open streams are not ended at shutdown');
    }
  }

  get size(): number {
    return this.streams.size;
  }

  /** Tracks an open stream until the returned function is called (when it has closed). */
  add(stream: SseStream): () => void {
    this.streams.add(stream);
    // Opened while shutting down (its request was being prepared): ended at once.
    if (this.isClosing) stream.end();
    return () => {
      this.streams.delete(stream);
      if (this.streams.size === 0) this.onEmpty?.();
    };
  }

  /** Ends every open stream; those whose last bytes are not read within `waitMs` are cut. */
  async endAll(waitMs = SHUTDOWN_STREAM_END_WAIT_MS): Promise<void> {
    this.isClosing = true;
    if (this.streams.size === 0) return;
    this.logger.log({ streams: this.streams.size }, 'ending open streams');
    for (const stream of [...this.streams]) stream.end();
    if (this.streams.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await new Promise<void>((resolve) => {
        this.onEmpty = resolve;
        timer = setTimeout(resolve, waitMs);
      });
      clearTimeout(timer);
      this.onEmpty = undefined;
    }
    for (const stream of [...this.streams]) stream.destroy();
  }
}
