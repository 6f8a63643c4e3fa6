import { Injectable, Logger } from '@nestjs/common';
import type { NextFunction, Request, Response } from 'express';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { droppedLogLines } from '../common/logger.js';
import { SessionsService } from '../sessions/sessions.service.js';

/** A session counts as active when it made a request within this window. */
const ACTIVE_SESSION_WINDOW_MS = 15 * 60_000;

/** The route template of a request ('/api/v1/conversations/:id'), never the raw path with ids. */
function endpointOf(req: Request, res: Response): string {
  const route = (req as unknown as { route?: { path?: unknown } }).route;
  if (route && typeof route.path === 'string') return `${req.baseUrl}${route.path}`;
  if (res.statusCode === 404 || res.statusCode === 405) return '<unmatched>';
  return req.path.startsWith('/api/') ? '<api>' : '<static>';
}

/**
 * The Prometheus metrics of one instance (design document 12.2 plus what operating the chat needs).
 * Its own registry, so that several apps in one process (tests) never collide.
 */
@Injectable()
export class MetricsService {
  private readonly logger = new Logger('Metrics');
  readonly registry = new Registry();
  private readonly openResponses = new Set<Response>();
  private activeSessions = 0;

  readonly requests = new Counter({
    name: 'parley_requests_total', help: 'HTTP requests answered, by method, route template and status',
    labelNames: ['method', 'endpoint', 'status'] as const, registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: 'parley_request_duration_seconds', help: 'Time from request to the end of the response (whole stream for SSE)',
    labelNames: ['method', 'endpoint'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
    registers: [this.registry],
  });
  readonly timeToFirstToken = new Histogram({
    name: 'parley_time_to_first_token_seconds', help: 'From accepting a chat message to the first token of the reply',
    labelNames: ['provider', 'model'] as const, buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 8, 13, 20, 30, 60],
    registers: [this.registry],
  });
  readonly tokensStreamed = new Counter({
    name: 'parley_tokens_streamed_total', help: 'Token events streamed from the model to clients',
    labelNames: ['provider', 'model'] as const, registers: [this.registry],
  });
  readonly upstreamErrors = new Counter({
    name: 'parley_upstream_errors_total', help: 'Failed calls to the model provider, by error code',
    labelNames: ['code'] as const, registers: [this.registry],
  });
  readonly generations = new Counter({
    name: 'parley_generations_total', help: 'Finished generations by final status (complete, stopped, failed, interrupted)',
    labelNames: ['status'] as const, registers: [this.registry],
  });
  readonly fileExtraction = new Histogram({
    name: 'parley_file_extraction_seconds', help: 'Time to extract text from an uploaded file, by type and outcome',
    labelNames: ['file_type', 'outcome'] as const, buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  constructor(private readonly sessions: SessionsService) {
    collectDefaultMetrics({ register: this.registry });
    const open = this.openResponses;
    new Gauge({
      name: 'parley_streaming_connections', help: 'Open Server-Sent Events connections on this instance',
      registers: [this.registry],
      collect() {
        let streams = 0;
        for (const res of open) if (String(res.getHeader('content-type') ?? '').startsWith('text/event-stream')) streams++;
        this.set(streams);
      },
    });
    new Counter({
      name: 'parley_log_lines_dropped_total', help: 'Log lines dropped because the reader of stdout fell too far behind',
      registers: [this.registry],
      collect() {
        const total = droppedLogLines();
        this.reset();
        if (total > 0) this.inc(total);
      },
    });
    const countActive = (): Promise<number> => this.countActiveSessions();
    new Gauge({
      name: 'parley_active_sessions', help: 'Sessions that made a request in the last 15 minutes (deployment-wide, from the database)',
      registers: [this.registry],
      async collect() { this.set(await countActive()); },
    });
  }

  /** Express middleware: counts and times every response by its route template. */
  httpMiddleware(): (req: Request, res: Response, next: NextFunction) => void {
    return (req, res, next) => {
      const stop = this.requestDuration.startTimer();
      this.openResponses.add(res);
      res.once('close', () => {
        this.openResponses.delete(res);
        const endpoint = endpointOf(req, res);
        // A client that went away before the answer was sent shows up as 499, as nginx logs it.
        const status = res.writableFinished || res.headersSent ? String(res.statusCode) : '499';
        this.requests.inc({ method: req.method, endpoint, status });
        stop({ method: req.method, endpoint });
      });
      next();
    };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** One indexed COUNT per scrape (every 15 s or so). */
  private async countActiveSessions(): Promise<number> {
    try {
      this.activeSessions = await this.sessions.countActiveSince(new Date(Date.now() - ACTIVE_SESSION_WINDOW_MS));
    } catch (err) {
      // The database is down: keep the last value; health and readiness report the outage.
      this.logger.warn({ err }, 'could not count active sessions');
    }
    return this.activeSessions;
  }
}
