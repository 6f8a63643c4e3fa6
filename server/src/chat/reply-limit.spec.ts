import { ReplyLimit } from './reply-limit.js';

describe('ReplyLimit', () => {
  it('lets a token through whole while the reply stays within its characters', () => {
    const limit = new ReplyLimit(10, 60_000, 0);
    expect(limit.fit(0, 'Hello')).toBe('Hello');
    expect(limit.fit(5, 'world')).toBe('world');
    expect(limit.cut).toBeUndefined();
  });

  it('cuts the token that goes past the limit to what is left, then takes nothing more: complete, finish_reason length', () => {
    const limit = new ReplyLimit(10, 60_000, 0);
    expect(limit.fit(8, 'abcdef')).toBe('ab');
    expect(limit.cut).toEqual({ status: 'complete', errorCode: null, finishReason: 'length', cause: 'MAX_REPLY_CHARS' });
    expect(limit.fit(10, 'x')).toBe('');
  });

  it('never keeps half of a surrogate pair at the cut', () => {
    const limit = new ReplyLimit(10, 60_000, 0);
    // '😀' is two UTF-16 code units: only its first would fit.
    expect(limit.fit(9, '😀!')).toBe('');
    expect(limit.cut?.finishReason).toBe('length');
    expect(new ReplyLimit(10, 60_000, 0).fit(8, '😀!')).toBe('😀');
  });

  it('ends a reply that runs out of time as at its length when it has text, failed with OPENAI_ERROR when it has none', () => {
    const withText = new ReplyLimit(1000, 500, 1_000);
    expect(withText.isOverTime(1_499, 12)).toBe(false);
    expect(withText.isOverTime(1_500, 12)).toBe(true);
    expect(withText.cut).toEqual({ status: 'complete', errorCode: null, finishReason: 'length', cause: 'UPSTREAM_MAX_DURATION_MS' });
    // Reached once: later ticks do not cut it again, and it takes no more text.
    expect(withText.isOverTime(2_000, 12)).toBe(false);
    expect(withText.fit(12, 'more')).toBe('');

    const silent = new ReplyLimit(1000, 500, 1_000);
    expect(silent.isOverTime(1_600, 0)).toBe(true);
    expect(silent.cut).toEqual({ status: 'failed', errorCode: 'OPENAI_ERROR', finishReason: null, cause: 'UPSTREAM_MAX_DURATION_MS' });
  });

  it('keeps the first limit reached: a reply cut at its length is not cut again by time', () => {
    const limit = new ReplyLimit(4, 500, 0);
    limit.fit(0, 'abcdef');
    expect(limit.isOverTime(10_000, 4)).toBe(false);
    expect(limit.cut?.cause).toBe('MAX_REPLY_CHARS');
  });

  it('has no limit where none is given (a partial config)', () => {
    const limit = new ReplyLimit(undefined as unknown as number, undefined as unknown as number, 0);
    expect(limit.fit(1e9, 'x')).toBe('x');
    expect(limit.isOverTime(1e15, 1)).toBe(false);
  });
});
