import { ApiError, apiErrorFrom, friendlyMessage } from './api-error';

describe('friendlyMessage', () => {
  it('says Parley\'s server is briefly unavailable on a 503 (the database, Redis, a shutdown), never that the model failed', () => {
    const withWait = apiErrorFrom(503, { error: { code: 'SERVICE_UNAVAILABLE', message: 'This instance is shutting down; please retry.' } }, '5');
    expect(friendlyMessage(withWait)).toBe('Parley\'s server is briefly unavailable. Try again in 5 s.');
    const withoutWait = new ApiError(503, 'SERVICE_UNAVAILABLE', 'The service is temporarily unavailable; please retry shortly.');
    expect(friendlyMessage(withoutWait)).toBe('Parley\'s server is briefly unavailable. Try again in a moment.');
    // A bare 503 from a proxy, without the envelope, reads the same.
    expect(friendlyMessage(apiErrorFrom(503, undefined, null))).not.toMatch(/model/i);
    expect(friendlyMessage(withWait, { isSend: true })).toBe('Parley\'s server is briefly unavailable. Try again in 5 s.');
  });

  it('says the server is out of storage space, not briefly unavailable, on a 503 for a full disk', () => {
    const full = apiErrorFrom(503, { error: { code: 'SERVICE_UNAVAILABLE', message: 'The server\'s storage is full; try again later.', details: { reason: 'storage_full' } } }, '60');
    expect(friendlyMessage(full)).toBe('Parley\'s server is out of storage space, so nothing new can be saved. Try again later.');
    expect(friendlyMessage(full, { isSend: true })).not.toMatch(/briefly/);
  });

  it('keeps the model\'s words for OPENAI_ERROR', () => {
    expect(friendlyMessage(new ApiError(502, 'OPENAI_ERROR', 'upstream'))).toBe('The model could not answer right now. Please retry.');
  });

  it('says a 429 is about sending messages only for a chat send; any other request reads as too many requests', () => {
    const limited = apiErrorFrom(429, { error: { code: 'RATE_LIMIT_EXCEEDED', message: 'Rate limit exceeded. Please try again in 30 s.', details: { retry_after_seconds: 30 } } }, '30');
    expect(friendlyMessage(limited)).toBe('Too many requests. Try again in 30 s.');
    expect(friendlyMessage(limited, { isSend: true })).toBe('You are sending messages too quickly. Try again in 30 s.');
    const noWait = new ApiError(429, 'RATE_LIMIT_EXCEEDED', 'Rate limit exceeded.');
    expect(friendlyMessage(noWait)).toBe('Too many requests. Try again in a moment.');
    expect(friendlyMessage(noWait, { isSend: true })).toBe('You are sending messages too quickly. Try again in a moment.');
  });

  it('makes a sentence of a validation refusal in class-validator\'s words, and leaves the server\'s own sentences as they are', () => {
    const empty = apiErrorFrom(400, {
      error: { code: 'VALIDATION_ERROR', message: 'message should not be empty', details: { fields: [{ field: 'message', errors: ['message should not be empty'] }] } },
    }, null);
    expect(friendlyMessage(empty)).toBe('The message should not be empty.');
    const long = apiErrorFrom(400, {
      error: { code: 'VALIDATION_ERROR', message: 'conversation_id must be a UUID', details: { fields: [{ field: 'conversation_id', errors: ['conversation_id must be a UUID'] }] } },
    }, null);
    expect(friendlyMessage(long)).toBe('The conversation id must be a UUID.');
    expect(friendlyMessage(new ApiError(400, 'VALIDATION_ERROR', 'Request body is not valid UTF-8'))).toBe('Request body is not valid UTF-8.');
    expect(friendlyMessage(new ApiError(400, 'VALIDATION_ERROR', 'A title cannot be empty.'))).toBe('A title cannot be empty.');
  });
});
