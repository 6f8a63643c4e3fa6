/** An API failure with the stable code of the error envelope, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly retryAfterSeconds?: number,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  get isNetwork(): boolean {
    return this.status === 0;
  }

  /** No answer at all: the browser is offline, or (online) Parley's server cannot be reached. */
  static network(): ApiError {
    const isOffline = typeof navigator !== 'undefined' && !navigator.onLine;
    return new ApiError(0, 'NETWORK_ERROR', isOffline
      ? 'You appear to be offline. Check your connection and try again.'
      : 'Parley\'s server cannot be reached right now. Try again in a moment.');
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function retryAfterOf(header: string | null, details: Record<string, unknown> | undefined): number | undefined {
  const fromDetails = details?.['retry_after_seconds'];
  if (typeof fromDetails === 'number' && fromDetails > 0) return Math.ceil(fromDetails);
  if (header && /^\d+$/.test(header.trim())) return Number(header.trim());
  if (header) {
    const at = Date.parse(header);
    if (!Number.isNaN(at)) return Math.max(1, Math.ceil((at - Date.now()) / 1000));
  }
  return undefined;
}

/** Reads the `{error:{code,message,details}}` envelope; anything else becomes a generic error for its status. */
export function apiErrorFrom(status: number, body: unknown, retryAfterHeader: string | null): ApiError {
  const envelope = isRecord(body) && isRecord(body['error']) ? body['error'] : undefined;
  const code = typeof envelope?.['code'] === 'string' ? envelope['code'] : status >= 500 ? 'INTERNAL_ERROR' : 'HTTP_' + status;
  const message = typeof envelope?.['message'] === 'string' ? envelope['message'] : `The server answered ${status}.`;
  const details = isRecord(envelope?.['details']) ? envelope['details'] : undefined;
  return new ApiError(status, code, message, retryAfterOf(retryAfterHeader, details), details);
}

export async function apiErrorFromResponse(res: Response): Promise<ApiError> {
  let body: unknown;
  try {
    body = await res.json();
  } catch {
    // A proxy error page is not JSON; the status alone still classifies it.
    body = undefined;
  }
  return apiErrorFrom(res.status, body, res.headers.get('Retry-After'));
}

/** The deployment's access gate refused to create a session: the token was missing or wrong. */
export function isAccessTokenRefusal(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401 && error.details?.['reason'] === 'access_token_required';
}

/**
 * Refused because the request carried two session cookies: a page of the same site planted one (session
 * fixation over plain http). The refusal's answer cleared it where it could: sent again, the request carries
 * only this browser's own.
 */
export function isCookieConflict(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401 && error.details?.['reason'] === 'conflicting_session_cookies';
}

/** Refused because the request came without the identity the deployment's sign-in gateway adds (TRUSTED_IDENTITY_HEADER). */
export function isIdentityRefusal(error: unknown): boolean {
  return error instanceof ApiError && error.status === 401 && error.details?.['reason'] === 'identity_required';
}

/** What the failed request was, where the words depend on it. */
export interface FailureContext {
  /** A chat message sent (or an answer asked for again): a 429 then means sending too quickly. */
  isSend?: boolean;
}

function inSeconds(seconds: number | undefined): string {
  return seconds ? `in ${seconds} s` : 'in a moment';
}

/** The first field a VALIDATION_ERROR names (`details.fields[0].field`), if any. */
function firstField(details: Record<string, unknown> | undefined): string | undefined {
  const fields = details?.['fields'];
  const first: unknown = Array.isArray(fields) ? fields[0] : undefined;
  return isRecord(first) && typeof first['field'] === 'string' ? first['field'] : undefined;
}

/**
 * A refusal's text as a sentence. The server's own are sentences already; class-validator's are not
 * ("message should not be empty"): they start with the field's name, lower case, and have no full stop.
 */
function validationSentence(error: ApiError): string {
  let text = error.message.trim();
  if (text === '') return 'The request was refused as invalid.';
  const field = firstField(error.details);
  if (field && text.startsWith(`${field} `)) text = `The ${field.replace(/_/g, ' ')}${text.slice(field.length)}`;
  text = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?…]$/.test(text) ? text : `${text}.`;
}

/** The sentence a person reads in a toast or notice. */
export function friendlyMessage(error: unknown, context: FailureContext = {}): string {
  if (!(error instanceof ApiError)) return 'Something went wrong. Please try again.';
  switch (error.code) {
    case 'NETWORK_ERROR':
      return error.message;
    case 'RATE_LIMIT_EXCEEDED':
      // Every route has a request budget too: a list or a rename refused is not about sending messages.
      return context.isSend
        ? `You are sending messages too quickly. Try again ${inSeconds(error.retryAfterSeconds)}.`
        : `Too many requests. Try again ${inSeconds(error.retryAfterSeconds)}.`;
    case 'GENERATION_IN_PROGRESS':
      return 'An answer is still being written in this conversation. Wait for it or stop it first.';
    case 'OPENAI_ERROR':
      return 'The model could not answer right now. Please retry.';
    case 'SERVICE_UNAVAILABLE':
      // Out of disk space: no retry in seconds helps, and "briefly" was not true.
      if (error.details?.['reason'] === 'storage_full') return 'Parley\'s server is out of storage space, so nothing new can be saved. Try again later.';
      // Parley's own database or Redis is unreachable, or the instance is shutting down: the model is not to blame.
      return `Parley's server is briefly unavailable. Try again ${inSeconds(error.retryAfterSeconds)}.`;
    case 'VALIDATION_ERROR':
      return validationSentence(error);
    case 'INTERNAL_ERROR':
      return 'The server hit an unexpected error. Please try again.';
    case 'UNAUTHORIZED':
      return isCookieConflict(error)
        ? 'Another site on this domain has set a Parley session cookie in this browser. Clear this site\'s cookies, then reload.'
        : error.message;
    default:
      return error.message;
  }
}
