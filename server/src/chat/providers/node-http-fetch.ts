import { Agent as HttpAgent, type IncomingMessage, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

const IDLE_SOCKET_MS = 4000;

/**
 * A request's init may carry this (through the SDK's `fetchOptions`): the request is built and
 * handed to this fetch at once, but goes out only once the promise resolves, and never if it
 * rejects (the upstream worker's prepared completions, upstream.worker.ts).
 */
export const SEND_WHEN = Symbol('parley.sendWhen');
export type GatedRequestInit = RequestInit & { [SEND_WHEN]?: Promise<void> };

/**
 * The `fetch` the OpenAI SDK sends its requests with (its documented `fetch` option), on Node's
 * own HTTP client with a keep-alive pool instead of the global fetch (undici).
 *
 * Why: a streamed completion is read chunk by chunk for its whole life, and the global fetch
 * hands each chunk through a WHATWG ReadableStream (a promise and several objects per chunk,
 * llhttp in WebAssembly); at 150 streams of 50 tokens/s that was the largest part of the relay's
 * per-token cost after the socket writes themselves (bench scenario 1, docs/performance.md).
 *
 * A successful response is returned without a body stream: its IncomingMessage is read
 * directly by the provider (`bodyOf`). Any other response (the SDK turns it into an APIError
 * from its body) is read whole first and returned as an ordinary Response.
 */
export class NodeHttpFetch {
  // An idle pooled connection is closed after 4 s (as the global fetch does), so a burst of
  // streams does not leave hundreds of sockets open; LIFO keeps reusing the warm ones.
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;
  private readonly bodies = new WeakMap<Response, IncomingMessage>();

  constructor(idleSocketMs = IDLE_SOCKET_MS) {
    // A socket timeout only closes pooled (idle) connections: a quiet response is the provider's
    // to time out (first-byte and idle timeouts), not the pool's.
    this.http = new HttpAgent({ keepAlive: true, timeout: idleSocketMs, scheduling: 'lifo' });
    this.https = new HttpsAgent({ keepAlive: true, timeout: idleSocketMs, scheduling: 'lifo' });
  }

  /**
   * With `SEND_WHEN` in `init`, the request is made ready at once (its URL and headers read, its
   * ClientRequest built and given a pooled connection, or a new one opened) and only written once
   * the promise resolves; nothing of it is written if the promise rejects. The ~0.1 ms of building
   * then happens while the turn is stored, not between the send and the model.
   */
  readonly fetch = (input: string | URL | Request, init: GatedRequestInit = {}): Promise<Response> => this.send(input, init, init[SEND_WHEN]);

  private send(input: string | URL | Request, init: RequestInit, sendWhen?: Promise<void>): Promise<Response> {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    const headers: Record<string, string> = {};
    new Headers(init.headers).forEach((value, name) => { headers[name] = value; });
    // No Accept-Encoding allows any coding (RFC 9110), and the stream is read as it comes: none, please.
    headers['accept-encoding'] ??= 'identity';
    const body = init.body;
    if (body !== undefined && body !== null && typeof body !== 'string' && !(body instanceof Uint8Array)) {
      // The chat completion request is JSON text; anything else is not this client's job.
      return Promise.reject(new TypeError('NodeHttpFetch sends string or byte bodies only'));
    }
    const signal = init.signal ?? undefined;
    return new Promise<Response>((resolve, reject) => {
      if (signal?.aborted) { reject(abortError()); return; }
      const isHttps = url.protocol === 'https:';
      const send = isHttps ? httpsRequest : httpRequest;
      const req = send(url, { method: init.method ?? 'GET', headers, agent: isHttps ? this.https : this.http }, (res) => {
        const status = res.statusCode ?? 0;
        const responseHeaders = new Headers();
        const raw = res.rawHeaders;
        for (let i = 0; i + 1 < raw.length; i += 2) responseHeaders.append(raw[i], raw[i + 1]);
        const meta = { status, statusText: res.statusMessage ?? '', headers: responseHeaders };
        if (status >= 200 && status < 300) {
          const response = new Response(null, meta);
          this.bodies.set(response, res);
          resolve(response);
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(new Response(status === 204 || status === 304 ? null : asOpenAiError(Buffer.concat(chunks)), meta)));
        res.on('error', (err) => reject(fetchFailed(err)));
      });
      const onAbort = (): void => { req.destroy(abortError()); };
      signal?.addEventListener('abort', onAbort, { once: true });
      // The listener stays for the body's life: aborting the signal also ends a body being read.
      req.on('close', () => signal?.removeEventListener('abort', onAbort));
      let isCancelled = false;
      req.on('error', (err) => reject(signal?.aborted || isCancelled ? abortError() : fetchFailed(err)));
      if (!sendWhen) {
        req.end(body ?? undefined);
        return;
      }
      sendWhen.then(
        () => { if (!req.destroyed) req.end(body ?? undefined); },
        () => {
          isCancelled = true;
          req.destroy();
          reject(abortError());
        },
      );
    });
  }

  /** The body of a successful response this fetch returned. */
  bodyOf(response: Response): IncomingMessage | undefined {
    return this.bodies.get(response);
  }

  close(): void {
    this.http.destroy();
    this.https.destroy();
  }
}

/** What a spec-compliant fetch rejects with on abort: the SDK maps it to APIUserAbortError. */
function abortError(): Error {
  return new DOMException('This operation was aborted', 'AbortError');
}

/** What the global fetch rejects with on a network error: the SDK maps it to APIConnectionError. */
function fetchFailed(cause: Error): TypeError {
  return new TypeError('fetch failed', { cause });
}

/**
 * An error body as the SDK reads it (`{"error": {...}}`): vLLM and FastChat-style servers answer
 * `{"object": "error", "message": ...}` at the top level, whose message the SDK would drop ("no body").
 */
function asOpenAiError(body: Buffer): Buffer {
  try {
    const parsed = JSON.parse(body.toString('utf8')) as Record<string, unknown> | null;
    if (parsed === null || typeof parsed !== 'object' || 'error' in parsed || typeof parsed.message !== 'string') return body;
    const { message, type, code } = parsed;
    return Buffer.from(JSON.stringify({ error: { message, type, code } }));
  } catch {
    return body;
  }
}
