import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { isIP } from 'node:net';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { plainToInstance, Transform } from 'class-transformer';
import {
  getMetadataStorage, IsBoolean, IsIn, IsInt, IsOptional, IsString, IsUrl, Matches, Max, MaxLength, Min, MinLength,
  ValidateBy, validateSync,
} from 'class-validator';
import { MAX_TIMER_MS } from '../common/max-timer.js';
import { toInt } from '../common/to-int.js';

export const APP_CONFIG = Symbol('APP_CONFIG');

export type DatabaseConfig =
  | { type: 'sqlite'; path: string }
  | { type: 'postgres'; url: string };

export type LlmProviderName = 'openai' | 'offline';

export interface AppConfig {
  port: number;
  host: string;
  nodeEnv: 'development' | 'production' | 'test';
  isProduction: boolean;
  dataDir: string;
  database: DatabaseConfig;
  sessionSecret: string;
  /**
   * Where the secret came from: SESSION_SECRET, DATA_DIR/session-secret, or generated into that file at this start (then
   * sessions already in the database were signed with another secret: SessionsService says so at start).
   */
  sessionSecretSource: SessionSecretSource;
  publicUrl?: string;
  corsOrigins: string[];
  /** Host names served besides addresses and localhost (common/host-allowlist.ts): ALLOWED_HOSTS and PUBLIC_URL's. */
  allowedHosts: string[];
  /** Express "trust proxy" value: false, a hop count, or a list of addresses/CIDRs of the gateway. */
  trustProxy: boolean | number | string;
  instanceId: string;
  logLevel: string;
  swaggerEnabled: boolean;
  clientDir: string;
  rateLimits: {
    chatPerMinute: number;
    chatPerHour: number;
    requestsPerMinute: number;
    sessionsPerMinute: number;
  };
  limits: {
    jsonBodyBytes: number;
    maxMessageChars: number;
    maxUploadBytes: number;
    sessionQuotaBytes: number;
    /** Uploads are refused while the uploads' disk has less free space than this (and room for one upload). */
    storageMinFreeBytes: number;
    /**
     * Readiness fails while DATA_DIR's disk has less free space than this (READY_MIN_FREE_BYTES): far
     * below storageMinFreeBytes, so a small disk pauses uploads long before the instance leaves rotation.
     */
    readyMinFreeBytes: number;
    allowedExtensions: string[];
    /**
     * An upload never sent with a message is deleted this long after it was made (UNSENT_FILE_TTL_HOURS): nothing
     * shows it once the tab that uploaded it is closed, and it counts against the session's quota.
     */
    unsentFileTtlMs: number;
  };
  sessions: {
    tokenTtlSeconds: number;
    inactiveDays: number;
    purgeIntervalMs: number;
    touchIntervalMs: number;
  };
  llm: {
    provider: LlmProviderName;
    baseUrl?: string;
    apiKey: string;
    model: string;
    systemPrompt: string;
    contextTokens: number;
    maxOutputTokens: number;
    upstreamTimeoutMs: number;
    upstreamIdleTimeoutMs: number;
    upstreamMaxRetries: number;
    /**
     * The longest reply Parley keeps, in characters (MAX_REPLY_CHARS), whatever the model does with
     * max_tokens: at it the upstream is aborted and the reply ends as if the model had hit its own limit.
     */
    maxReplyChars: number;
    /** The longest a reply may run, from its start (UPSTREAM_MAX_DURATION_MS); then it ends as at maxReplyChars. */
    upstreamMaxDurationMs: number;
    /** Upstream streams are read on a worker thread (ThreadedChatProvider) rather than the main one. */
    upstreamWorker: boolean;
    offlineTokenDelayMs: number;
    modelTitles: boolean;
  };
  stream: {
    heartbeatMs: number;
    flushIntervalMs: number;
    leaseMs: number;
    leaseCheckIntervalMs: number;
    /** How long a finished reply's events stay in memory for an exact resume (Last-Event-ID). */
    replayRetentionMs: number;
    /** The most finished answers kept for exact replay in memory (one instance, no Redis). */
    replayMaxAnswers: number;
    /** SSE streams one session may hold open at once on this instance (STREAM_MAX_PER_SESSION). */
    maxPerSession: number;
  };
  files: {
    pdfMaxPages: number;
    pdfTimeoutMs: number;
    pdfMaxMemoryMb: number;
    maxExtractedChars: number;
    /** How long a started extraction process waits for the next upload after one (0: none kept). */
    extractWarmMs: number;
    scanner: 'none' | 'command';
    scannerCommand?: string;
  };
  redisUrl?: string;
  /**
   * Starts every Redis key and pub/sub channel of this deployment (REDIS_PREFIX), so deployments
   * sharing one Redis (staging and production, two tenants) keep their state and events apart.
   */
  redisPrefix: string;
  shutdownGraceMs: number;
  metricsToken?: string;
  accessToken?: string;
  trustedIdentityHeader?: string;
}

/**
 * Why a session secret is refused, or undefined when it is fine. Never quotes the secret. Whitespace
 * at either end is almost always a copy-paste accident (a trailing space or CR) that another
 * instance, configured by hand, would not have: its tokens would then be refused there.
 */
function sessionSecretProblem(secret: string): string | undefined {
  if (secret === '') return 'is empty (unset it to have one generated)';
  if (secret.trim() === '') return 'is only whitespace';
  if (secret.trim() !== secret) return 'starts or ends with whitespace (a copy-paste error?); remove it';
  if (Buffer.byteLength(secret, 'utf8') < 32) return 'must be at least 32 bytes (UTF-8)';
  return undefined;
}

const IsSessionSecret = (): PropertyDecorator => ValidateBy({
  name: 'isSessionSecret',
  validator: {
    validate: (value: unknown) => typeof value === 'string' && sessionSecretProblem(value) === undefined,
    defaultMessage: (args) => `SESSION_SECRET ${typeof args?.value === 'string' ? sessionSecretProblem(args.value) : 'must be a string'}`,
  },
});

const toBool = ({ value }: { value: unknown }): unknown =>
  value === 'true' || value === '1' ? true : value === 'false' || value === '0' ? false : value;

/** A custom check whose message comes from `problem` (undefined: the value is fine). The message names the variable. */
const Checked = (name: string, problem: (value: string) => string | undefined): PropertyDecorator => ValidateBy({
  name,
  validator: {
    validate: (value: unknown) => typeof value === 'string' && problem(value) === undefined,
    defaultMessage: (args) => `${args?.property ?? name} ${typeof args?.value === 'string' ? problem(args.value) : 'must be a string'}`,
  },
});

/**
 * Every *_MS setting feeds a timer, or a deadline beside one: above MAX_TIMER_MS Node fires a timer
 * after 1 ms (SESSION_PURGE_INTERVAL_MS=2592000000 purged without pause, STREAM_HEARTBEAT_MS pinged
 * thousands of times a second, SHUTDOWN_GRACE_MS ended the grace at once).
 */
const MaxTimer = (): PropertyDecorator =>
  Max(MAX_TIMER_MS, { message: `$property must be at most ${MAX_TIMER_MS} (about 24.8 days, the longest timer Node.js keeps)` });

/** The longest session token: its exp, and the cookie's expiry, must stay within JavaScript dates; 10 years. */
const MAX_TOKEN_TTL_SECONDS = 10 * 365 * 86_400;
/** Ages counted back from now (UNSENT_FILE_TTL_HOURS, SESSION_INACTIVE_DAYS) stay valid dates: at most 100 years. */
const MAX_AGE_DAYS = 100 * 365;

/**
 * The room MAX_OUTPUT_TOKENS must leave in MODEL_CONTEXT_TOKENS for the prompt (system prompt, question, files,
 * earlier messages: token-budget.ts): at least as much as the answer's, or this much, whichever is less.
 */
const MIN_PROMPT_TOKENS = 1_024;

/** Why CORS_ORIGINS is refused: the first entry that is not an http(s) origin. */
function corsOriginsProblem(value: string): string | undefined {
  const entries = list(value);
  for (const [i, entry] of entries.entries()) {
    let url: URL | undefined;
    try { url = new URL(entry); } catch { url = undefined; }
    // Anything but http(s) has the opaque origin "null", which would let any sandboxed page in with credentials.
    if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
      return `entry ${i + 1} of ${entries.length} (${JSON.stringify(entry)}) is not an origin: each comma-separated entry must be `
        + 'http:// or https:// and a host, with a port if not the default (https://app.example.com, http://localhost:4200)';
    }
  }
  return undefined;
}

interface ProxyAddr { compile(list: string[]): unknown }
let proxyAddr: ProxyAddr | undefined;
/** The proxy-addr Express itself uses to compile its "trust proxy" setting (it is Express's dependency, not ours). */
function expressProxyAddr(): ProxyAddr {
  proxyAddr ??= createRequire(createRequire(__filename).resolve('express'))('proxy-addr') as ProxyAddr;
  return proxyAddr;
}

/**
 * Why TRUST_PROXY is refused, checked as Express compiles it (utils.compileTrust): true, false, a hop count, or
 * comma-separated addresses, CIDRs and the names loopback, linklocal and uniquelocal (proxy-addr). Refused here,
 * Express would otherwise throw only once the app is built, after the migrations ran.
 */
function trustProxyProblem(value: string): string | undefined {
  if (typeof parseTrustProxy(value) !== 'string') return undefined;
  const entries = value.split(',').map((v) => v.trim());
  for (const [i, entry] of entries.entries()) {
    try {
      expressProxyAddr().compile([entry]);
    } catch {
      return `entry ${i + 1} of ${entries.length} (${JSON.stringify(entry)}) is not an IP address, a CIDR (10.0.0.0/8), `
        + 'loopback, linklocal or uniquelocal; TRUST_PROXY takes those, comma-separated, or a hop count (1), true or false';
    }
  }
  return undefined;
}

const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/;

/** Why HOST is refused: neither an IP address nor a host name (whether the name resolves is checked at start: hostLookupProblem). */
function hostProblem(value: string): string | undefined {
  if (isIP(value) !== 0) return undefined;
  const help = 'HOST must be an IP address of this machine (0.0.0.0 or :: for all, 127.0.0.1 or ::1 for this machine only) or a host name that resolves to one (localhost)';
  if (value === '') return `is empty (unset it to listen on 0.0.0.0); ${help}`;
  if (/^\[.*\]$/.test(value)) return `takes an IPv6 address without brackets (${value.slice(1, -1)})`;
  const labels = value.replace(/\.$/, '').split('.');
  // A last label of digits only makes no name: 999.1.1.1 or 10.0.0 is a mistyped IPv4 address.
  const isName = value.length <= 253 && labels.every((l) => HOST_LABEL.test(l)) && !/^\d+$/.test(labels[labels.length - 1]);
  return isName ? undefined : `is neither an IP address nor a host name; ${help}`;
}

/** The raw environment, as validated at boot. Every variable is documented in .env.example. */
class Env {
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(65535) PORT?: number;
  @IsOptional() @IsString() @Checked('isListenHost', hostProblem) HOST?: string;
  @IsOptional() @IsIn(['development', 'production', 'test']) NODE_ENV?: 'development' | 'production' | 'test';
  @IsOptional() @IsString() @MinLength(1) DATA_DIR?: string;
  @IsOptional() @Matches(/^(postgres(ql)?:\/\/|sqlite:).+/, { message: 'DATABASE_URL must start with postgres://, postgresql:// or sqlite:' })
  DATABASE_URL?: string;
  @IsOptional() @IsSessionSecret() SESSION_SECRET?: string;
  @IsOptional() @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'] }) PUBLIC_URL?: string;
  @IsOptional() @IsString() @Checked('isOriginList', corsOriginsProblem) CORS_ORIGINS?: string;
  @IsOptional() @Matches(/^\s*(\*|\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?)\s*(,\s*(\*|\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?)\s*)*$/, {
    message: 'ALLOWED_HOSTS must be comma-separated host names (chat.example.com), .example.com for a domain and its subdomains, or *',
  })
  ALLOWED_HOSTS?: string;
  @IsOptional() @IsString() @Checked('isTrustProxy', trustProxyProblem) TRUST_PROXY?: string;
  @IsOptional() @Matches(/^[A-Za-z0-9._-]{1,64}$/) INSTANCE_ID?: string;
  @IsOptional() @IsIn(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']) LOG_LEVEL?: string;
  @IsOptional() @Transform(toBool) @IsBoolean() SWAGGER_ENABLED?: boolean;
  @IsOptional() @IsString() CLIENT_DIR?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) RATE_LIMIT_CHAT_PER_MINUTE?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) RATE_LIMIT_CHAT_PER_HOUR?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) RATE_LIMIT_REQUESTS_PER_MINUTE?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) RATE_LIMIT_SESSIONS_PER_MINUTE?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1024) JSON_BODY_LIMIT_BYTES?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(1_000_000) MAX_MESSAGE_CHARS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) MAX_UPLOAD_BYTES?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) SESSION_QUOTA_BYTES?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(MAX_AGE_DAYS * 24, { message: `$property must be at most ${MAX_AGE_DAYS * 24} (100 years)` }) UNSENT_FILE_TTL_HOURS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) STORAGE_MIN_FREE_BYTES?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) READY_MIN_FREE_BYTES?: number;
  @IsOptional() @Matches(/^\.[a-z0-9]+(,\s*\.[a-z0-9]+)*$/i) ALLOWED_EXTENSIONS?: string;

  @IsOptional() @Transform(toInt) @IsInt() @Min(60) @Max(MAX_TOKEN_TTL_SECONDS, { message: `$property must be at most ${MAX_TOKEN_TTL_SECONDS} (10 years)` })
  SESSION_TOKEN_TTL_SECONDS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @Max(MAX_AGE_DAYS, { message: `$property must be at most ${MAX_AGE_DAYS} (100 years)` }) SESSION_INACTIVE_DAYS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @MaxTimer() SESSION_PURGE_INTERVAL_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @MaxTimer() SESSION_TOUCH_INTERVAL_MS?: number;

  @IsOptional() @IsIn(['openai', 'offline']) LLM_PROVIDER?: LlmProviderName;
  @IsOptional() @IsUrl({ require_tld: false, require_protocol: true, protocols: ['http', 'https'], allow_underscores: true }) OPENAI_BASE_URL?: string;
  @IsOptional() @IsString() OPENAI_API_KEY?: string;
  @IsOptional() @IsString() @MaxLength(200) OPENAI_MODEL?: string;
  @IsOptional() @IsString() SYSTEM_PROMPT?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(256) MODEL_CONTEXT_TOKENS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(16) MAX_OUTPUT_TOKENS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @MaxTimer() UPSTREAM_TIMEOUT_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @MaxTimer() UPSTREAM_IDLE_TIMEOUT_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @Max(10) UPSTREAM_MAX_RETRIES?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) MAX_REPLY_CHARS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @MaxTimer() UPSTREAM_MAX_DURATION_MS?: number;
  @IsOptional() @Transform(toBool) @IsBoolean() UPSTREAM_WORKER?: boolean;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @MaxTimer() OFFLINE_TOKEN_DELAY_MS?: number;
  @IsOptional() @Transform(toBool) @IsBoolean() MODEL_TITLES?: boolean;

  @IsOptional() @Transform(toInt) @IsInt() @Min(10) @MaxTimer() STREAM_HEARTBEAT_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) @MaxTimer() STREAM_FLUSH_INTERVAL_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @MaxTimer() STREAM_LEASE_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @MaxTimer() STREAM_LEASE_CHECK_INTERVAL_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) @MaxTimer() STREAM_REPLAY_RETENTION_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) STREAM_REPLAY_MAX_ANSWERS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1) STREAM_MAX_PER_SESSION?: number;

  @IsOptional() @Transform(toInt) @IsInt() @Min(1) PDF_MAX_PAGES?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(100) @MaxTimer() PDF_TIMEOUT_MS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(16) PDF_MAX_MEMORY_MB?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(1000) MAX_EXTRACTED_CHARS?: number;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @MaxTimer() FILE_EXTRACT_WARM_MS?: number;
  @IsOptional() @IsIn(['none', 'command']) FILE_SCANNER?: 'none' | 'command';
  @IsOptional() @IsString() FILE_SCANNER_COMMAND?: string;

  @IsOptional() @Matches(/^rediss?:\/\/.+/) REDIS_URL?: string;
  // No braces: a `{…}` in the prefix would become the Redis Cluster hash tag of every key (all in
  // one slot) instead of the per-generation and per-counter tags. No spaces: it also names the connection.
  @IsOptional() @Matches(/^[A-Za-z0-9:_.-]{1,64}$/, { message: 'REDIS_PREFIX must be 1 to 64 letters, digits, ":", "_", "-" or "."' })
  REDIS_PREFIX?: string;
  @IsOptional() @Transform(toInt) @IsInt() @Min(0) @MaxTimer() SHUTDOWN_GRACE_MS?: number;
  @IsOptional() @IsString() @MinLength(16) METRICS_TOKEN?: string;
  @IsOptional() @IsString() @MinLength(16) ACCESS_TOKEN?: string;
  @IsOptional() @Matches(/^[A-Za-z0-9-]{1,64}$/) TRUSTED_IDENTITY_HEADER?: string;
}

/** Every variable Parley reads: the properties of Env, read from their validation decorators. */
export function settingNames(): string[] {
  const metadata = getMetadataStorage().getTargetValidationMetadatas(Env, '', true, false);
  return [...new Set(metadata.map((m) => m.propertyName))];
}

function list(value: string | undefined): string[] {
  return (value ?? '').split(',').map((s) => s.trim()).filter((s) => s.length > 0);
}

function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined || value === '' || value === 'false') return false;
  if (value === 'true') return true;
  if (/^\d+$/.test(value)) return Number(value);
  return value; // e.g. "loopback" or "10.0.0.0/8, 172.16.0.0/12"
}

export type SessionSecretSource = 'env' | 'file' | 'generated';

/**
 * The secret signs every session token. It is never a literal default: when unset we
 * generate one and keep it under DATA_DIR (mode 0600), so tokens survive restarts.
 */
function resolveSessionSecret(fromEnv: string | undefined, dataDir: string): { secret: string; source: SessionSecretSource } {
  if (fromEnv) return { secret: fromEnv, source: 'env' };
  const file = join(dataDir, 'session-secret');
  if (existsSync(file)) {
    // The line breaks an editor or `echo` ends a text file with are not part of the secret.
    const stored = readFileSync(file, 'utf8').replace(/[\r\n]+$/, '');
    const problem = sessionSecretProblem(stored);
    if (problem !== undefined) throw new Error(`Invalid env: the SESSION_SECRET in ${file} ${problem}`);
    // Restored or copied with looser modes (a backup unpacked under umask 022): owner-only again, as the database is.
    if ((statSync(file).mode & 0o077) !== 0) chmodSync(file, 0o600);
    return { secret: stored, source: 'file' };
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const secret = randomBytes(48).toString('base64url');
  writeFileSync(file, secret, { mode: 0o600, flag: 'wx' });
  chmodSync(file, 0o600);
  return { secret, source: 'generated' };
}

/** Validates the environment once; throws naming every bad variable. Nothing else reads process.env. */
/** The longest instance id: the messages' owner_instance column (varchar(64) on PostgreSQL). */
const MAX_INSTANCE_ID = 64;

/**
 * An instance's id without INSTANCE_ID: its host name and process id, within 64 characters. A longer host
 * name (a Kubernetes pod's, up to 63, with a container's pid) keeps its end, where pod names are unique
 * (the whole id was stored as every reply's owner: on PostgreSQL every chat failed, 500).
 */
export function defaultInstanceId(host: string, pid: number): string {
  const suffix = `-${pid}`;
  return `${host.slice(-(MAX_INSTANCE_ID - suffix.length))}${suffix}`;
}

const DEFAULT_CONTEXT_TOKENS = 16_000;
const DEFAULT_MAX_OUTPUT_TOKENS = 2_048;

/**
 * Why MAX_OUTPUT_TOKENS leaves too little of MODEL_CONTEXT_TOKENS for the prompt, or undefined. The prompt gets
 * what the answer's room leaves (token-budget.ts: contextTokens - maxOutputTokens - the system prompt), so with
 * MODEL_CONTEXT_TOKENS=256 and the default 2048 every question was refused (400, "at most 0 fit"). The answer may
 * take at most half the context, or more when that still leaves MIN_PROMPT_TOKENS (a 200k model with 128k out).
 */
function tokenBudgetProblem(context: number | undefined, output: number | undefined): string | undefined {
  const contextTokens = context ?? DEFAULT_CONTEXT_TOKENS;
  const outputTokens = output ?? DEFAULT_MAX_OUTPUT_TOKENS;
  const left = contextTokens - outputTokens;
  if (left >= Math.min(outputTokens, MIN_PROMPT_TOKENS)) return undefined;
  const said = (name: string, value: number, isSet: boolean) => `${name} (${value}${isSet ? '' : ', the default'})`;
  const highest = Math.max(Math.floor(contextTokens / 2), contextTokens - MIN_PROMPT_TOKENS);
  const lowest = outputTokens + Math.min(outputTokens, MIN_PROMPT_TOKENS);
  return `${said('MAX_OUTPUT_TOKENS', outputTokens, output !== undefined)} leaves ${Math.max(0, left)} tokens of `
    + `${said('MODEL_CONTEXT_TOKENS', contextTokens, context !== undefined)} for the prompt (system prompt, question, files, `
    + `earlier messages): the answer's room may take at most half the context, or more if ${MIN_PROMPT_TOKENS} tokens are left. `
    + `Set MODEL_CONTEXT_TOKENS to the model's real context window (at least ${lowest} for this MAX_OUTPUT_TOKENS), `
    + `or MAX_OUTPUT_TOKENS to at most ${highest}`;
}

/**
 * What a failure to listen, or to look HOST up before it, says about HOST or PORT, in one line naming the variable;
 * undefined for any other error. A name that does not resolve, an address not on this machine, a port in use.
 */
export function listenProblem(err: unknown, where: { host: string; port: number }): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  const host = `HOST (${where.host})`;
  switch (code) {
    case 'ENOTFOUND': case 'EAI_NONAME': case 'EAI_NODATA': case 'EAI_FAIL': case 'EAI_AGAIN':
      return `${host} does not resolve to an address (${String(code)}): set HOST to an IP address of this machine `
        + '(0.0.0.0 or :: for all) or a name that resolves to one';
    case 'EADDRNOTAVAIL':
      return `${host} is not an address of this machine (EADDRNOTAVAIL): set HOST to one of its addresses, or 0.0.0.0 or :: for all`;
    case 'EADDRINUSE':
      return `PORT (${where.port}) is in use on ${where.host} (EADDRINUSE): stop what holds it or set another PORT`;
    case 'EACCES':
      return `PORT (${where.port}) may not be opened by this user (EACCES): ports below 1024 need privileges; set PORT to 1024 or more`;
    default:
      return undefined;
  }
}

/** Why HOST cannot be listened on, as far as a look-up says before anything starts (a name that does not resolve). */
export async function hostLookupProblem(host: string, port: number): Promise<string | undefined> {
  if (isIP(host) !== 0) return undefined;
  try {
    await lookup(host);
    return undefined;
  } catch (err) {
    return listenProblem(err, { host, port });
  }
}

export function loadConfig(raw: NodeJS.ProcessEnv): AppConfig {
  const env = plainToInstance(Env, { ...raw });
  const errors = validateSync(env, { forbidUnknownValues: false });
  const lines = errors.map((e) => `${e.property} (${Object.values(e.constraints ?? {}).join('; ')})`);
  const isValid = (name: keyof Env): boolean => !errors.some((e) => e.property === name);
  if (isValid('MODEL_CONTEXT_TOKENS') && isValid('MAX_OUTPUT_TOKENS')) {
    const problem = tokenBudgetProblem(env.MODEL_CONTEXT_TOKENS, env.MAX_OUTPUT_TOKENS);
    if (problem !== undefined) lines.push(`MAX_OUTPUT_TOKENS (${problem})`);
  }
  if (lines.length > 0) throw new Error(`Invalid env: ${lines.join(', ')}`);
  const nodeEnv = env.NODE_ENV ?? 'development';
  const dataDir = resolve(env.DATA_DIR ?? './data');
  const dbUrl = env.DATABASE_URL;
  const database: DatabaseConfig = dbUrl && /^postgres(ql)?:/.test(dbUrl)
    ? { type: 'postgres', url: dbUrl }
    : { type: 'sqlite', path: dbUrl ? resolve(dbUrl.replace(/^sqlite:(\/\/)?/, '')) : join(dataDir, 'parley.sqlite') };
  const hasOpenAi = Boolean(env.OPENAI_API_KEY || env.OPENAI_BASE_URL);
  const provider: LlmProviderName = env.LLM_PROVIDER ?? (hasOpenAi ? 'openai' : 'offline');
  const maxOutputTokens = env.MAX_OUTPUT_TOKENS ?? DEFAULT_MAX_OUTPUT_TOKENS;
  const allowed = env.ALLOWED_EXTENSIONS ? list(env.ALLOWED_EXTENSIONS).map((e) => e.toLowerCase())
    : ['.txt', '.md', '.pdf', '.py', '.js', '.json'];
  const sessionSecret = resolveSessionSecret(env.SESSION_SECRET, dataDir);
  return {
    port: env.PORT ?? 3000,
    host: env.HOST ?? '0.0.0.0',
    nodeEnv,
    isProduction: nodeEnv === 'production',
    dataDir,
    database,
    sessionSecret: sessionSecret.secret,
    sessionSecretSource: sessionSecret.source,
    publicUrl: env.PUBLIC_URL ? new URL(env.PUBLIC_URL).origin : undefined,
    corsOrigins: list(env.CORS_ORIGINS).map((o) => new URL(o).origin),
    allowedHosts: [...list(env.ALLOWED_HOSTS), ...(env.PUBLIC_URL ? [new URL(env.PUBLIC_URL).hostname] : [])],
    trustProxy: parseTrustProxy(env.TRUST_PROXY),
    instanceId: env.INSTANCE_ID ?? defaultInstanceId(hostname(), process.pid),
    logLevel: env.LOG_LEVEL ?? (nodeEnv === 'test' ? 'silent' : 'info'),
    swaggerEnabled: env.SWAGGER_ENABLED ?? nodeEnv !== 'production',
    clientDir: resolve(env.CLIENT_DIR ?? join(__dirname, '..', '..', 'client', 'browser')),
    rateLimits: {
      chatPerMinute: env.RATE_LIMIT_CHAT_PER_MINUTE ?? 20,
      chatPerHour: env.RATE_LIMIT_CHAT_PER_HOUR ?? 100,
      requestsPerMinute: env.RATE_LIMIT_REQUESTS_PER_MINUTE ?? 600,
      sessionsPerMinute: env.RATE_LIMIT_SESSIONS_PER_MINUTE ?? 60,
    },
    limits: {
      jsonBodyBytes: env.JSON_BODY_LIMIT_BYTES ?? 256 * 1024,
      maxMessageChars: env.MAX_MESSAGE_CHARS ?? 32_000,
      maxUploadBytes: env.MAX_UPLOAD_BYTES ?? 10 * 1024 * 1024,
      sessionQuotaBytes: env.SESSION_QUOTA_BYTES ?? 100 * 1024 * 1024,
      storageMinFreeBytes: env.STORAGE_MIN_FREE_BYTES ?? 1024 * 1024 * 1024,
      readyMinFreeBytes: env.READY_MIN_FREE_BYTES ?? 64 * 1024 * 1024,
      allowedExtensions: allowed,
      unsentFileTtlMs: (env.UNSENT_FILE_TTL_HOURS ?? 24) * 3600_000,
    },
    sessions: {
      tokenTtlSeconds: env.SESSION_TOKEN_TTL_SECONDS ?? 30 * 24 * 3600,
      inactiveDays: env.SESSION_INACTIVE_DAYS ?? 90,
      purgeIntervalMs: env.SESSION_PURGE_INTERVAL_MS ?? 3600_000,
      touchIntervalMs: env.SESSION_TOUCH_INTERVAL_MS ?? 60_000,
    },
    llm: {
      provider,
      baseUrl: env.OPENAI_BASE_URL,
      // Keyless local servers (Ollama, llama.cpp) still need a non-empty key for the SDK.
      apiKey: env.OPENAI_API_KEY ?? 'not-needed',
      model: env.OPENAI_MODEL ?? 'gpt-4o-mini',
      systemPrompt: env.SYSTEM_PROMPT ?? 'You are Parley, a helpful assistant. Answer clearly and use Markdown where it helps.',
      contextTokens: env.MODEL_CONTEXT_TOKENS ?? DEFAULT_CONTEXT_TOKENS,
      maxOutputTokens,
      upstreamTimeoutMs: env.UPSTREAM_TIMEOUT_MS ?? 30_000,
      upstreamIdleTimeoutMs: env.UPSTREAM_IDLE_TIMEOUT_MS ?? 60_000,
      upstreamMaxRetries: env.UPSTREAM_MAX_RETRIES ?? 2,
      // A token is ~4 characters of prose; 16 leaves room for long ones (code, URLs) even when
      // MAX_OUTPUT_TOKENS is raised, and 200,000 for the default's few pages.
      maxReplyChars: env.MAX_REPLY_CHARS ?? Math.max(200_000, 16 * maxOutputTokens),
      upstreamMaxDurationMs: env.UPSTREAM_MAX_DURATION_MS ?? 10 * 60_000,
      upstreamWorker: env.UPSTREAM_WORKER ?? true,
      offlineTokenDelayMs: env.OFFLINE_TOKEN_DELAY_MS ?? 25,
      modelTitles: env.MODEL_TITLES ?? false,
    },
    stream: {
      heartbeatMs: env.STREAM_HEARTBEAT_MS ?? 15_000,
      flushIntervalMs: env.STREAM_FLUSH_INTERVAL_MS ?? 250,
      leaseMs: env.STREAM_LEASE_MS ?? 30_000,
      leaseCheckIntervalMs: env.STREAM_LEASE_CHECK_INTERVAL_MS ?? 15_000,
      replayRetentionMs: env.STREAM_REPLAY_RETENTION_MS ?? 5 * 60_000,
      replayMaxAnswers: env.STREAM_REPLAY_MAX_ANSWERS ?? 2_000,
      maxPerSession: env.STREAM_MAX_PER_SESSION ?? 20,
    },
    files: {
      pdfMaxPages: env.PDF_MAX_PAGES ?? 500,
      pdfTimeoutMs: env.PDF_TIMEOUT_MS ?? 30_000,
      pdfMaxMemoryMb: env.PDF_MAX_MEMORY_MB ?? 256,
      maxExtractedChars: env.MAX_EXTRACTED_CHARS ?? 2_000_000,
      extractWarmMs: env.FILE_EXTRACT_WARM_MS ?? 300_000,
      scanner: env.FILE_SCANNER ?? 'none',
      scannerCommand: env.FILE_SCANNER_COMMAND,
    },
    redisUrl: env.REDIS_URL,
    redisPrefix: env.REDIS_PREFIX ?? 'parley:',
    shutdownGraceMs: env.SHUTDOWN_GRACE_MS ?? 30_000,
    metricsToken: env.METRICS_TOKEN,
    accessToken: env.ACCESS_TOKEN,
    trustedIdentityHeader: env.TRUSTED_IDENTITY_HEADER?.toLowerCase(),
  };
}
