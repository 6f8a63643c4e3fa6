import { channel } from 'node:diagnostics_channel';

/**
 * Points on a chat request's path to its first token, as Node diagnostics channels: a publish
 * costs nothing while nobody subscribes (every call site checks `hasSubscribers`), so they stay
 * on in production. Subscribers: the benchmark's phase breakdown (bench/breakdown.mjs, through
 * bench/lib/probe.cjs), or an APM agent. With Node's own `http.server.request.start` they split
 * the time to first token into the HTTP pipeline, the chat service, the model's side and the write.
 *
 * Messages carry the request object (or the provider's completion id), never its content.
 */
export const chatChannels = {
  /** The request passed the HTTP pipeline (body, guards, validation): `{ request }`. */
  accepted: channel('parley:chat.accepted'),
  /** The turn is stored and the generation started (the model's request is on its way): `{ request }`. */
  started: channel('parley:chat.started'),
  /** The first token event of the reply went to the client's socket: `{ request }`. */
  firstTokenWritten: channel('parley:chat.first-token-written'),
  /** A completion was handed to the upstream worker: `{ id }` (the provider's completion id). */
  upstreamPosted: channel('parley:upstream.posted'),
  /** That completion's first token came back from the worker: `{ id }`. */
  upstreamFirstToken: channel('parley:upstream.first-token'),
};
