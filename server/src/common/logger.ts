import type { LoggerService } from '@nestjs/common';
import type { EventEmitter } from 'node:events';
import pino, { type DestinationStream, type Logger } from 'pino';

/**
 * How much log output may wait in memory for a slow reader of stdout before lines are dropped
 * (rather than the process growing without bound, or stopping to wait).
 */
export const LOG_BUFFER_MAX_BYTES = 8 * 1024 * 1024;
/**
 * Lines are gathered until this many bytes wait, or LOG_FLUSH_MS passed, then written together:
 * one write (and one wake-up of the thread that does it) per ~20 request lines instead of one each.
 */
export const LOG_BATCH_BYTES = 4096;
/** The longest a line waits in memory before it is written, when the server is quiet. */
export const LOG_FLUSH_MS = 250;

let droppedLines = 0;

/**
 * Standard output, written asynchronously: a line is queued and written off the event loop, in
 * batches (LOG_BATCH_BYTES, or every LOG_FLUSH_MS; lines queued while a write is in flight leave
 * together too). pino's default writes each line with a blocking write(2): one system call per
 * request on the event loop, and a reader that falls behind (a full pipe to the container's log
 * driver) would stop the whole server. A process that means to exit does so with exitAfterLogs();
 * on any other exit (uncaught exception) pino writes what is still queued synchronously, except a
 * write already in flight at that moment.
 */
export function stdoutDestination(maxBufferBytes = LOG_BUFFER_MAX_BYTES): DestinationStream {
  const destination = pino.destination({
    dest: 1, sync: false, minLength: Math.min(LOG_BATCH_BYTES, maxBufferBytes), maxLength: maxBufferBytes, periodicFlush: LOG_FLUSH_MS,
  });
  destination.on('drop', () => { droppedLines++; });
  return destination;
}

/** Log lines dropped in this process because stdout's reader fell LOG_BUFFER_MAX_BYTES behind (a metric). */
export function droppedLogLines(): number {
  return droppedLines;
}

/**
 * Ends the process once every line queued for the logger's destination is written, waiting at most
 * `waitMs` (a reader that stopped reading must not keep a stopping server alive). pino's own exit
 * hook alone is not enough: it writes the queue synchronously while an asynchronous write may
 * still be in flight, so lines could come out of order or, if the process ends first, be lost.
 */
export function exitAfterLogs(logger: Logger, code: number, waitMs = 3000): void {
  const stream = (logger as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] as Partial<EventEmitter & { end(): void; destroyed: boolean }> | undefined;
  if (!stream?.end || !stream.once || stream.destroyed) process.exit(code);
  const timer = setTimeout(() => process.exit(code), waitMs);
  stream.once('close', () => {
    clearTimeout(timer);
    process.exit(code);
  });
  stream.end();
}

/**
 * pino's error serializer, without the data a database error carries: TypeORM's QueryFailedError
 * holds the statement's parameters (a message's text, a title, a file's extracted text).
 */
export function errWithoutData(err: Error): ReturnType<typeof pino.stdSerializers.err> {
  const out = pino.stdSerializers.err(err) as ReturnType<typeof pino.stdSerializers.err> & { parameters?: unknown; driverError?: unknown };
  if (out !== null && typeof out === 'object') {
    if ('parameters' in out) out.parameters = '[redacted]';
    if (out.driverError !== null && typeof out.driverError === 'object' && 'parameters' in out.driverError) {
      out.driverError = { ...out.driverError, parameters: '[redacted]' };
    }
  }
  return out;
}

/**
 * Structured JSON logs. Tokens, cookies and bodies are never logged: request logging only
 * records method, path (without query), status, time and request id.
 */
export function createRootLogger(level: string, destination: DestinationStream = stdoutDestination()): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: undefined,
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'res.headers["set-cookie"]', '*.token', '*.content', '*.message_text'],
      censor: '[redacted]',
    },
    serializers: { err: errWithoutData },
  };
  return pino(options, destination);
}

/** Adapts pino to Nest's LoggerService so framework and app logs share one format. */
export class PinoNestLogger implements LoggerService {
  constructor(private readonly root: Logger) {}

  log(message: unknown, ...rest: unknown[]): void { this.write('info', message, rest); }
  error(message: unknown, ...rest: unknown[]): void { this.write('error', message, rest); }
  warn(message: unknown, ...rest: unknown[]): void { this.write('warn', message, rest); }
  debug(message: unknown, ...rest: unknown[]): void { this.write('debug', message, rest); }
  verbose(message: unknown, ...rest: unknown[]): void { this.write('trace', message, rest); }
  fatal(message: unknown, ...rest: unknown[]): void { this.write('fatal', message, rest); }

  private write(level: pino.Level, message: unknown, rest: unknown[]): void {
    // Nest passes the context name last.
    const context = typeof rest[rest.length - 1] === 'string' ? (rest.pop() as string) : undefined;
    // An Error's message and stack are not own enumerable fields: spread, it logged as nothing at all (a
    // failed start said only `{"context":"ExceptionHandler"}`). Logged as `err`, as the app logs errors.
    if (message instanceof Error) {
      this.root[level]({ context, err: message }, message.message);
      return;
    }
    // Nest's error(message, stack): the stack kept beside the message.
    const stack = typeof message === 'string' && typeof rest[0] === 'string' && /\n\s+at /.test(rest[0]) ? rest[0] : undefined;
    if (stack !== undefined) {
      this.root[level]({ context, stack }, message as string);
      return;
    }
    if (typeof message === 'object' && message !== null) {
      const text = typeof rest[0] === 'string' ? rest[0] : undefined;
      this.root[level]({ context, ...(message) }, text);
      return;
    }
    this.root[level]({ context }, String(message));
  }
}
