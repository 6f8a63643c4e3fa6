import type { Socket } from 'node:net';
import type { Response } from 'express';
import { Observable, type Observer, type Subscription } from 'rxjs';
import { chatChannels } from '../common/diagnostics.js';
import type { ChatEvent, FollowedEvents, SequencedEvent, TokenEvent } from './chat-events.js';

export interface SseOptions {
  heartbeatMs: number;
  onOpen?: () => void;
  onClose?: () => void;
}

/** An open stream, as writeSse returns it. */
export interface SseStream {
  /** The response has closed (onClose has been called). */
  readonly isClosed: boolean;
  /**
   * Ends the stream now, cleanly, whatever its events do: what was taken is written, then the
   * body's end, with no final event, so the client resumes after its last id (a shutdown).
   */
  end(): void;
  /** Cuts the connection. */
  destroy(): void;
}

/** One event as written: explicit per-message id, JSON on one data line. */
export function formatSseEvent(e: SequencedEvent): string {
  return e instanceof SerializedEvent || e instanceof TokenSse ? e.sse : `id: ${e.id}\ndata: ${JSON.stringify(e.event)}\n\n`;
}

/**
 * A sequenced event that serializes itself once, on first use, for all its listeners (several
 * tabs on one answer). Short-lived: the registry keeps the compact form, not these.
 */
export class SerializedEvent implements SequencedEvent {
  #sse?: string;

  constructor(readonly id: number, readonly event: ChatEvent) {}

  get sse(): string {
    this.#sse ??= `id: ${this.id}\ndata: ${JSON.stringify(this.event)}\n\n`;
    return this.#sse;
  }
}

/** ISO 8601 of a time in ms; the tokens of one millisecond (of any stream) share one string. */
let isoMs = NaN;
let iso = '';
export function isoAt(ms: number): string {
  if (ms !== isoMs) {
    isoMs = ms;
    iso = new Date(ms).toISOString();
  }
  return iso;
}

/**
 * A token event as published: its SSE text is written by hand rather than by JSON.stringify of an
 * object, byte for byte what SerializedEvent gives for the same TokenEvent (a test holds them
 * equal); the event object itself is only built for whoever asks (Redis mirror, tests).
 */
export class TokenSse implements SequencedEvent {
  #sse?: string;

  constructor(readonly id: number, readonly token: string, readonly timestamp: string) {}

  get event(): TokenEvent {
    return { type: 'token', token: this.token, finished: false, timestamp: this.timestamp };
  }

  get sse(): string {
    this.#sse ??= `id: ${this.id}\ndata: {"type":"token","token":${JSON.stringify(this.token)},"finished":false,"timestamp":"${this.timestamp}"}\n\n`;
    return this.#sse;
  }

  toJSON(): SequencedEvent {
    return { id: this.id, event: this.event };
  }

  /** JSON.stringify of this event (toJSON's), written by hand as `sse` is: the Redis mirror's copy of every token. */
  get json(): string {
    return `{"id":${this.id},"event":{"type":"token","token":${JSON.stringify(this.token)},"finished":false,"timestamp":"${this.timestamp}"}}`;
  }
}

/** A comment line: keeps proxies from closing an idle stream and does not move the client's Last-Event-ID. */
export const SSE_HEARTBEAT = ': ping\n\n';

/**
 * How much of a stream may wait for one reader, taken from its events but not yet read, in
 * characters: past it the writer takes no more events until the socket has drained, then takes
 * them again after the last one it has. Without it, a resume of a long finished answer was
 * formatted and queued whole for each reader (its replay comes in one synchronous run), however
 * slowly that reader read.
 */
export const MAX_QUEUED_CHARS = 256 * 1024;

/**
 * Heartbeats in a row with data waiting for the reader and none of it read, after which the
 * reader is cut (60 s at the default 15 s): the socket never times out by itself (an idle answer
 * stream is normal), so a client that stops reading would otherwise hold its socket, what waits
 * for it and its session's stream slot for ever.
 *
 * Read means: the system took some bytes of what waits since the last heartbeat, however much
 * more was queued meanwhile. The socket's writableLength shrinks only once a whole write has
 * been taken, and a write can be bigger than what a slow reader reads in a minute (a replay's
 * MAX_QUEUED_CHARS in one write, or the writes queued meanwhile, which Node sends as one): a
 * phone reading 2 KB/s was cut as stalled while it read. So the write in progress counts too.
 */
export const STALL_HEARTBEATS = 4;

/**
 * Writes a generation's events to the response as Server-Sent Events. The route calls it only
 * once every check has passed (validation, guards, ownership, limits), so an error before the
 * stream opens is an ordinary JSON envelope from the error filter. It only subscribes: the
 * client going away unsubscribes and never touches the generation.
 *
 * Written straight to the response: Nest's own @Sse() forces its own Cache-Control and adds a
 * Transform stream per connection, and a Readable body piped into the response (StreamableFile)
 * costs a stream hop per token; at 150 streams of 50 tokens/s those hops were measurable
 * (bench scenario 1). Events are pushed as they come: live, the generation's pace bounds them.
 * A replay comes all at once, so the writer takes at most MAX_QUEUED_CHARS of it, unsubscribes,
 * and subscribes again once the socket drained, after the last event it took (FollowedEvents.after;
 * a stream without it replays from the same point with the same ids, and what it has is skipped).
 *
 * `onClose` is called once the response has really ended: its last bytes handed to the system,
 * or its connection gone. A reader that reads nothing while data waits for it is cut after
 * STALL_HEARTBEATS heartbeats (checked on the heartbeat's own timer: nothing per token).
 */
/** An event stream's status and headers (also a HEAD's whole answer). */
export function setSseHead(res: Response): void {
  res.status(200);
  // no-store as on the rest of the API: an answer read to its end (a resume's GET) stayed in the browser's disk cache.
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('X-Accel-Buffering', 'no');
  res.setHeader('Content-Type', 'text/event-stream; charset=utf-8');
}

export function writeSse(res: Response, events: FollowedEvents, options: SseOptions): SseStream {
  setSseHead(res);
  // Each event goes out at once (no Nagle delay) and the socket never idles out mid-answer.
  res.socket?.setNoDelay(true);
  res.socket?.setTimeout(0);
  options.onOpen?.();
  /** The response has closed: everything is released. */
  let isClosed = false;
  /** The body's end is written (the events completed); the response closes once it is read. */
  let isEnded = false;
  /** Too much waits for the reader: no events are taken until the socket drains. */
  let isPaused = false;
  /** The id of the last event taken. */
  let lastId = -1;
  let subscription: Subscription | undefined;
  let drainingSocket: Socket | undefined;
  /** The socket's writableLength after the last write. */
  let queued = 0;
  /**
   * Characters this stream's writes left queued on the socket, in all (as writableLength counts
   * them); less what is queued now, that is what has left the socket. `leftAtBeat`: as much at
   * the last heartbeat.
   */
  let enqueued = 0;
  let leftAtBeat = 0;
  /** What the write in progress has still to hand to the system, at the last heartbeat (unsentOf). */
  let unsentAtBeat = 0;
  let stalledBeats = 0;
  const send = (text: string): void => {
    const socket = res.socket;
    const before = socket?.writableLength ?? 0;
    writeChunk(res, text);
    queued = socket?.writableLength ?? 0;
    enqueued += queued - before;
  };
  const beat = (): void => {
    const socket = res.socket;
    const waiting = socket?.writableLength ?? 0;
    const left = enqueued - waiting;
    const unsent = unsentOf(socket);
    // Node has one write at a time in progress: unless one has left (left grew), the next has not
    // begun, and what the current one still has to send can only shrink, as the reader reads.
    if (waiting === 0 || left > leftAtBeat || unsent < unsentAtBeat) {
      stalledBeats = 0;
    } else if (++stalledBeats >= STALL_HEARTBEATS) {
      // Closes the response (below), which gives back what the stream holds.
      res.destroy();
      return;
    }
    leftAtBeat = left;
    unsentAtBeat = unsent;
    // Goes on after the body's end, until the response closes: a reader may stall on a replay's last bytes too.
    if (waiting === 0 && !isEnded) send(SSE_HEARTBEAT);
  };
  const heartbeat = setInterval(beat, options.heartbeatMs);
  heartbeat.unref();
  const resume = (): void => {
    drainingSocket = undefined;
    if (isClosed || isEnded || !isPaused) return;
    isPaused = false;
    subscribe();
  };
  const close = (): void => {
    if (isClosed) return;
    isClosed = true;
    clearInterval(heartbeat);
    subscription?.unsubscribe();
    drainingSocket?.off('drain', resume);
    options.onClose?.();
  };
  res.on('close', close);
  // The client may have gone while the route was still preparing (storing the turn): its 'close'
  // has fired already, and only this tells. Closed now, the stream neither subscribes for nothing
  // nor keeps what it holds (a session's stream slot) until the answer ends.
  if (res.destroyed) close();
  const pause = (): void => {
    isPaused = true;
    subscription?.unsubscribe();
  };
  /** Once what was taken is written: resumes when the socket has drained. */
  const resumeOnDrain = (): void => {
    if (drainingSocket) return;
    const socket = res.socket;
    if (socket?.writableNeedDrain) {
      drainingSocket = socket;
      socket.once('drain', resume);
    } else {
      setImmediate(resume);
    }
  };
  // Events delivered in one synchronous run (a replay, or the tokens of one upstream read) leave
  // in one write: one syscall instead of one per event. Tokens that arrive apart still go out one
  // by one, at once. The write waits two microtasks, not one: promise reactions queued by that
  // same run go first, and a generation's end is one (the provider's promise that the read
  // bringing the last token resolved; GenerationService publishes the final event from it), so
  // the last token, the final event and the body's end leave in one write instead of three.
  let pending = '';
  let isScheduled = false;
  // For the diagnostics channel, when subscribed as the stream opens (else nothing to do per
  // token): 0 = no token yet, 1 = the first token is in `pending`, 2 = written or not wanted.
  let firstToken = chatChannels.firstTokenWritten.hasSubscribers ? 0 : 2;
  const written = (): void => {
    if (firstToken === 1) {
      firstToken = 2;
      chatChannels.firstTokenWritten.publish({ request: res.req });
    }
  };
  const flush = (): void => {
    isScheduled = false;
    if (pending.length === 0 || isClosed || isEnded) return;
    send(pending);
    pending = '';
    written();
    if (queued > MAX_QUEUED_CHARS) pause();
    if (isPaused) resumeOnDrain();
  };
  const flushSoon = (): void => { queueMicrotask(flush); };
  const end = (): void => {
    if (isEnded || isClosed) return;
    isEnded = true;
    const last = pending;
    pending = '';
    subscription?.unsubscribe();
    const socket = res.socket;
    const before = socket?.writableLength ?? 0;
    if (last.length > 0 && res.headersSent) {
      // What is left and the body's end in one write (Node corks the socket around them).
      res.end(last);
    } else {
      // Headers not out yet (a replay of an ended reply, say): sent as before, chunked.
      if (last.length > 0) writeChunk(res, last);
      res.end();
    }
    queued = socket?.writableLength ?? 0;
    enqueued += queued - before;
    if (last.length > 0) written();
  };
  const observer: Partial<Observer<SequencedEvent>> = {
    next: (e) => {
      // Paused, or taken before a pause and replayed again since.
      if (isPaused || e.id <= lastId) return;
      lastId = e.id;
      pending += formatSseEvent(e);
      if (firstToken === 0 && (e instanceof TokenSse || e.event.type === 'token')) firstToken = 1;
      if (!isScheduled) {
        isScheduled = true;
        queueMicrotask(flushSoon);
      }
      if (pending.length > MAX_QUEUED_CHARS) pause();
    },
    error: end,
    // Paused, the events are not all taken: a later subscription takes the rest, then completes.
    complete: () => { if (!isPaused) end(); },
  };
  const subscribe = (): void => {
    // Wrapped only to hold the subscriber before a replay runs: a pause during it then stops it
    // there (the registry's replay checks `closed`) rather than after every event it holds. The
    // events themselves go straight to that subscriber, as without the wrapper.
    // Taken up again, a registry's stream starts after the last event taken (FollowedEvents.after);
    // any other (a stream rebuilt from its row: a few events) is replayed and skipped by id.
    const source = lastId >= 0 && events.after ? events.after(lastId) : events;
    new Observable<SequencedEvent>((subscriber) => {
      subscription = subscriber;
      return source.subscribe(subscriber);
    }).subscribe(observer);
  };
  if (!isClosed) subscribe();
  if (!isClosed && !isScheduled && !res.headersSent) {
    // Nothing to send yet: the headers leave now, so the client sees the stream open. (Usually
    // the first events are already there, e.g. `start`, and the headers leave with them: one
    // write on the path to the first token instead of two.)
    res.flushHeaders();
  }
  return {
    get isClosed() { return isClosed; },
    end,
    destroy: () => { res.destroy(); },
  };
}

/**
 * Bytes of the socket's write in progress that the system has not taken yet: libuv's write queue
 * size, which net.Socket reads itself so that a slow write in progress does not time its socket
 * out (`_onTimeout`, since Node 8). 0 where the handle does not say: then only whole writes count.
 */
function unsentOf(socket: Socket | null): number {
  const handle = (socket as { _handle?: { writeQueueSize?: unknown } } | null)?._handle;
  return typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : 0;
}

/** What writeChunk reads of Node's response beyond Express' types (stable since Node 0.x). */
interface ChunkedResponse {
  chunkedEncoding?: boolean;
  outputData?: unknown[];
}

/**
 * Writes a piece of the stream's body. Once the headers are on the socket and the body is
 * HTTP/1.1 chunked, the chunk is framed here (size line, data, CRLF) and handed to the socket in
 * one write. res.write would do the same in four socket writes on a corked socket, uncorked on
 * the next tick into one writev: per token, at 150 streams, that machinery was a measurable part
 * of the relay's CPU (bench scenario 1, docs/performance.md). Anything else (headers not out
 * yet, output still queued in the response, a body that is not chunked, a res.write wrapped by
 * a middleware) goes through res.write.
 */
export function writeChunk(res: Response, text: string): void {
  // An empty chunk would be the body's terminator ("0\r\n\r\n"); res.write skips it, so do we.
  if (text.length === 0) return;
  const socket = res.socket;
  const node = res as unknown as ChunkedResponse;
  // A middleware that wraps res.write (compression, say) must see every piece: then no shortcut.
  const isPlain = !Object.hasOwn(res, 'write');
  if (isPlain && socket !== null && res.headersSent && node.chunkedEncoding === true && node.outputData?.length === 0 && socket.writable) {
    socket.write(`${Buffer.byteLength(text).toString(16)}\r\n${text}\r\n`);
    return;
  }
  res.write(text);
}
