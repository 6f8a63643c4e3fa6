import { ErrorCode } from '../common/error-code.js';
import { failureFields, FALLBACK_TEXTS, fallbackTextFor } from './fallback-texts.js';
import { ProviderError, refusalOf } from './providers/chat-provider.js';

describe('what a failed answer says', () => {
  it('tells a refused request (trying again cannot help) from an outage, and a prompt over the context from any other refusal', () => {
    const http = (status: number, message: string): ProviderError => new ProviderError('http', `Upstream answered ${status}: ${status} ${message}`, status);
    expect(refusalOf(http(400, 'This model\'s maximum context length is 8192 tokens.'))).toBe('context_length_exceeded');
    expect(refusalOf(http(400, 'the request exceeds the available context size, try increasing it (exceed_context_size_error)'))).toBe('context_length_exceeded');
    expect(refusalOf(http(400, 'Input prompt (9013 tokens) is too long and exceeds limit of 8192'))).toBe('context_length_exceeded');
    expect(refusalOf(http(400, 'status code (no body) (context_length_exceeded)'))).toBe('context_length_exceeded');
    expect(refusalOf(http(413, 'Request too large'))).toBe('context_length_exceeded');
    expect(refusalOf(http(400, 'Invalid value for \'temperature\''))).toBe('upstream_refused');
    expect(refusalOf(http(401, 'Incorrect API key provided'))).toBe('upstream_refused');
    expect(refusalOf(http(404, 'The model `gpt-9` does not exist'))).toBe('upstream_refused');
    expect(refusalOf(http(307, 'redirected to https://elsewhere/v1'))).toBe('upstream_refused');
    // Worth trying again: a rate limit, a timeout, the server's own failure, anything that is not an HTTP answer.
    for (const status of [408, 429, 500, 503]) expect(refusalOf(http(status, 'maximum context length'))).toBeUndefined();
    expect(refusalOf(new ProviderError('upstream-error', 'Upstream error mid-stream: maximum context length exceeded'))).toBeUndefined();
    expect(refusalOf(new ProviderError('cut', 'The upstream connection was cut'))).toBeUndefined();
  });

  it('says the same of a stored answer as of a live one: the refusal from its finish reason, with OPENAI_ERROR only', () => {
    expect(failureFields(ErrorCode.OpenAiError, 'failed', 'context_length_exceeded'))
      .toEqual({ error: FALLBACK_TEXTS.contextLengthExceeded, finish_reason: 'context_length_exceeded' });
    expect(failureFields(ErrorCode.OpenAiError, 'failed', 'upstream_refused'))
      .toEqual({ error: FALLBACK_TEXTS.upstreamRefused, finish_reason: 'upstream_refused' });
    expect(failureFields(ErrorCode.OpenAiError, 'failed', null)).toEqual({ error: FALLBACK_TEXTS.openaiUnavailable });
    // A model's own finish reason on a failed answer (it sent one, then failed) is no refusal.
    expect(failureFields(ErrorCode.OpenAiError, 'failed', 'stop')).toEqual({ error: FALLBACK_TEXTS.openaiUnavailable });
    expect(failureFields(ErrorCode.OpenAiError, 'interrupted', 'upstream_refused')).toEqual({ error: FALLBACK_TEXTS.interrupted });
    expect(fallbackTextFor(ErrorCode.InternalError, 'failed', 'context_length_exceeded')).toBe(FALLBACK_TEXTS.generic);
  });
});
