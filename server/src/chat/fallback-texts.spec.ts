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
    expect(refusalOf(http(429, 'Rate limit reached for gpt-4o on tokens per min (TPM). Please try again in 2s. (rate_limit_exceeded)'))).toBeUndefined();
    // Out of credit: a 429 on OpenAI, but no passing limit; the operator must add credit.
    expect(refusalOf(http(429, 'You exceeded your current quota, please check your plan and billing details. (insufficient_quota, insufficient_quota)'))).toBe('upstream_refused');
    expect(refusalOf(http(429, 'status code (no body) (insufficient_quota)'))).toBe('upstream_refused');
    // Gemini's per-minute limit in OpenAI's words, without the code: a limit that passes.
    expect(refusalOf(http(429, 'You exceeded your current quota, please check your plan and billing details. Please retry in 17.3s. (RESOURCE_EXHAUSTED)'))).toBeUndefined();
    expect(refusalOf(new ProviderError('upstream-error', 'Upstream error mid-stream: connection to the worker reset'))).toBeUndefined();
    expect(refusalOf(new ProviderError('cut', 'The upstream connection was cut'))).toBeUndefined();
  });

  it('reads the words of the servers people put behind Parley: the context, a content filter, a completion too long for the model', () => {
    const http = (status: number, message: string): ProviderError => new ProviderError('http', `Upstream answered ${status}: ${message}`, status);
    const midStream = (message: string): ProviderError => new ProviderError('upstream-error', `Upstream error mid-stream: ${message}`);
    const overContext = [
      http(400, 'The input token count (1200000) exceeds the maximum number of tokens allowed (1048576).'), // Gemini
      http(422, 'Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 1024 `max_new_tokens`'), // TGI
      http(400, 'litellm.ContextWindowExceededError: litellm.BadRequestError: prompt too large'), // LiteLLM
      http(400, 'Requested tokens (5000) exceed context window of 4096'), // llama-cpp-python
      http(400, 'prompt is too long: 210000 tokens > 200000 maximum'), // Anthropic-compatible gateways
      http(400, 'This model\'s maximum context length is 4096 tokens. However, you requested 4200 tokens (3200 in the messages, 1000 in the completion).'),
      // vLLM: the prompt leaves no room for the completion asked, which a shorter prompt would have.
      http(400, '\'max_tokens\' or \'max_completion_tokens\' is too large: 1024. This model\'s maximum context length is 4096 tokens and your request has 3500 input tokens (1024 > 4096 - 3500).'),
      // SGLang and older llama.cpp say it after a 200, in the stream.
      midStream('The input (9000 tokens) is longer than the model\'s context length (8192 tokens).'),
      midStream('the request exceeds the available context size, try increasing it'),
      http(400, 'input (70000 tokens) is larger than the max context size (65536 tokens). skipping (exceed_context_size_error)'), // llama.cpp
      midStream('{"message":"input is too large","type":"exceed_context_size_error"}'),
      http(400, 'The decoder prompt (length 5951) is longer than the maximum model length of 4096.'), // vLLM
      http(422, 'Input validation error: `inputs` must have less than 4096 tokens. Given: 5000'), // TGI
      http(400, 'This model\'s maximum prompt length is 131072 but the request contains 140000 tokens.'), // xAI
    ];
    for (const err of overContext) expect(refusalOf(err), err.message).toBe('context_length_exceeded');
    // Azure OpenAI's content filter, on the request or in the stream: rephrasing helps, a shorter prompt need not.
    expect(refusalOf(http(400, 'The response was filtered due to the prompt triggering Azure OpenAI\'s content management policy. (content_filter)'))).toBe('content_filter');
    expect(refusalOf(midStream('{"code":"content_filter","message":"filtered"}'))).toBe('content_filter');
    expect(refusalOf(http(400, 'Content Exists Risk (invalid_request_error)'))).toBe('content_filter'); // DeepSeek
    expect(refusalOf(http(403, 'Input required moderation on OpenAI. Your input was flagged for "harassment".'))).toBe('content_filter'); // OpenRouter
    // A throttle passes, whatever else it says: Bedrock through LiteLLM, mid-stream or in a 400.
    expect(refusalOf(midStream('litellm.RateLimitError: BedrockException - {"message":"Too many tokens, please wait before trying again."}'))).toBeUndefined();
    expect(refusalOf(http(400, 'ThrottlingException: Too many tokens, please wait before trying again.'))).toBeUndefined();
    // MAX_OUTPUT_TOKENS over the model's whole context: no prompt fits, the operator must lower it.
    expect(refusalOf(http(400, '\'max_tokens\' or \'max_completion_tokens\' is too large: 8192. This model\'s maximum context length is 4096 tokens and your request has 20 input tokens (8192 > 4096 - 20).'))).toBe('upstream_refused');
    expect(refusalOf(http(400, 'This model\'s maximum context length is 4096 tokens. However, you requested 8212 tokens (20 in the messages, 8192 in the completion).'))).toBe('upstream_refused');
    expect(refusalOf(http(400, 'This model\'s maximum context length is 4096 tokens. However, you requested 8192 output tokens and your prompt contains at least 20 input tokens, for a total of at least 8212 tokens.'))).toBe('upstream_refused');
    expect(refusalOf(http(400, 'Requested token count exceeds the model\'s maximum context length of 4096 tokens. You requested a total of 8212 tokens: 20 tokens from the input messages and 8192 tokens for the completion.'))).toBe('upstream_refused');
    expect(refusalOf(http(422, 'Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 20 `inputs` tokens and 8192 `max_new_tokens`'))).toBe('upstream_refused');
    // The same servers when the prompt leaves no room: the user's to shorten.
    expect(refusalOf(http(400, 'This model\'s maximum context length is 4096 tokens. However, you requested 1024 output tokens and your prompt contains at least 3500 input tokens, for a total of at least 4524 tokens.'))).toBe('context_length_exceeded');
    expect(refusalOf(http(400, 'Requested token count exceeds the model\'s maximum context length of 4096 tokens. You requested a total of 4524 tokens: 3500 tokens from the input messages and 1024 tokens for the completion.'))).toBe('context_length_exceeded');
    expect(refusalOf(midStream('\'max_tokens\' is too large: 8192. This model\'s maximum context length is 4096 tokens'))).toBeUndefined();
    // "Context window" alone is no refusal for length: a model's description may say it.
    expect(refusalOf(http(404, 'The model `long-context-window-128k` does not exist'))).toBe('upstream_refused');
    expect(refusalOf(http(400, 'Model llama3 has a context window of 8192; tool calls are not supported'))).toBe('upstream_refused');
  });

  it('says the same of a stored answer as of a live one: the refusal from its finish reason, with OPENAI_ERROR only', () => {
    expect(failureFields(ErrorCode.OpenAiError, 'failed', 'context_length_exceeded'))
      .toEqual({ error: FALLBACK_TEXTS.contextLengthExceeded, finish_reason: 'context_length_exceeded' });
    expect(failureFields(ErrorCode.OpenAiError, 'failed', 'upstream_refused'))
      .toEqual({ error: FALLBACK_TEXTS.upstreamRefused, finish_reason: 'upstream_refused' });
    expect(failureFields(ErrorCode.OpenAiError, 'failed', 'content_filter'))
      .toEqual({ error: FALLBACK_TEXTS.contentFilter, finish_reason: 'content_filter' });
    expect(failureFields(ErrorCode.OpenAiError, 'failed', null)).toEqual({ error: FALLBACK_TEXTS.openaiUnavailable });
    // A model's own finish reason on a failed answer (it sent one, then failed) is no refusal.
    expect(failureFields(ErrorCode.OpenAiError, 'failed', 'stop')).toEqual({ error: FALLBACK_TEXTS.openaiUnavailable });
    expect(failureFields(ErrorCode.OpenAiError, 'interrupted', 'upstream_refused')).toEqual({ error: FALLBACK_TEXTS.interrupted });
    expect(fallbackTextFor(ErrorCode.InternalError, 'failed', 'context_length_exceeded')).toBe(FALLBACK_TEXTS.generic);
  });
});
