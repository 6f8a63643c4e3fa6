import { ErrorCode } from '../common/error-code.js';

/** How a reply that a limit cut ends: stored so, and sent so as its final event. */
export interface ReplyCut {
  status: 'complete' | 'failed';
  errorCode: ErrorCode | null;
  finishReason: 'length' | null;
  /** For logs: which limit. */
  cause: 'MAX_REPLY_CHARS' | 'UPSTREAM_MAX_DURATION_MS';
}

const AT_LENGTH = { status: 'complete', errorCode: null, finishReason: 'length' } as const;

/**
 * Parley's own bounds on one reply, whatever the model does: at most `maxChars` characters
 * (MAX_REPLY_CHARS) and `maxDurationMs` from its start (UPSTREAM_MAX_DURATION_MS). A model that
 * ignores max_tokens, or trickles tokens just faster than the idle timeout, otherwise holds its
 * conversation (409 for new sends), a growing row rewritten at every flush and its events in
 * memory for as long as it goes on.
 *
 * A cut reply ends as one whose model hit its own max_tokens: `complete`, finish_reason `length`,
 * its text kept (it is a good answer, only a cut one, and stays context for the next turn). Only a
 * reply that ran out of time before any text ends `failed` with OPENAI_ERROR, as the upstream
 * timeouts do: an empty "complete" answer would be a lie.
 *
 * The caller compares the running length with `maxChars` per token (one comparison) and calls
 * `fit` only past it; the time is checked by the generations' shared ticker, never per token.
 */
export class ReplyLimit {
  /** Set once a limit is reached: the reply takes no more text. */
  cut?: ReplyCut;
  readonly maxChars: number;
  private readonly deadline: number;

  constructor(maxChars: number, maxDurationMs: number, startedAt: number) {
    // A limit that is not a number (left out of a partial config, as some tests build it) is none.
    this.maxChars = Number.isFinite(maxChars) ? maxChars : Infinity;
    this.deadline = Number.isFinite(maxDurationMs) ? startedAt + maxDurationMs : Infinity;
  }

  /**
   * The part of `token` that fits after `length` characters of reply: all of it, or what is left
   * of the limit (never half of a surrogate pair), the limit then reached.
   */
  fit(length: number, token: string): string {
    if (this.cut) return '';
    if (length + token.length <= this.maxChars) return token;
    this.cut = { ...AT_LENGTH, cause: 'MAX_REPLY_CHARS' };
    let end = Math.max(0, this.maxChars - length);
    const last = token.charCodeAt(end - 1);
    if (last >= 0xd800 && last <= 0xdbff) end--;
    return token.slice(0, end);
  }

  /** True when the reply ran out of time just now (`length`: its characters so far); the limit is then reached. */
  isOverTime(now: number, length: number): boolean {
    if (this.cut || now < this.deadline) return false;
    this.cut = length > 0
      ? { ...AT_LENGTH, cause: 'UPSTREAM_MAX_DURATION_MS' }
      : { status: 'failed', errorCode: ErrorCode.OpenAiError, finishReason: null, cause: 'UPSTREAM_MAX_DURATION_MS' };
    return true;
  }
}
