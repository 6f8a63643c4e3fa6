import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MAX_TIMER_MS } from '../common/max-timer.js';
import { defaultInstanceId, hostLookupProblem, listenProblem, loadConfig, settingNames } from './app-config.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'parley-cfg-'));

describe('loadConfig', () => {
  it('refuses a SESSION_SECRET under 32 bytes, naming the variable', () => {
    expect(() => loadConfig({ DATA_DIR: tmp(), SESSION_SECRET: 'short' })).toThrow(/SESSION_SECRET/);
  });

  it('refuses a SESSION_SECRET that is only whitespace or has whitespace at either end, without quoting it', () => {
    const cases: Array<[string, RegExp]> = [
      [' '.repeat(32), /SESSION_SECRET is only whitespace/],
      ['\t'.repeat(40), /SESSION_SECRET is only whitespace/],
      [`${'k'.repeat(40)} `, /SESSION_SECRET starts or ends with whitespace \(a copy-paste error\?\)/],
      [` ${'k'.repeat(40)}`, /SESSION_SECRET starts or ends with whitespace/],
      [`${'k'.repeat(40)}\r`, /SESSION_SECRET starts or ends with whitespace/],
      ['', /SESSION_SECRET is empty/],
    ];
    for (const [secret, message] of cases) {
      const load = () => loadConfig({ DATA_DIR: tmp(), SESSION_SECRET: secret });
      expect(load, JSON.stringify(secret)).toThrow(message);
      if (secret.trim() !== '') expect(load).not.toThrow(secret.trim());
    }
    // Whitespace inside is the secret's own.
    expect(loadConfig({ DATA_DIR: tmp(), SESSION_SECRET: `${'k'.repeat(20)} ${'k'.repeat(20)}` }).sessionSecret).toHaveLength(41);
  });

  it('counts the SESSION_SECRET minimum in UTF-8 bytes, not characters', () => {
    // 16 characters, 32 bytes: enough. 31 characters of which none is over one byte: not.
    expect(loadConfig({ DATA_DIR: tmp(), SESSION_SECRET: 'é'.repeat(16) }).sessionSecret).toBe('é'.repeat(16));
    expect(() => loadConfig({ DATA_DIR: tmp(), SESSION_SECRET: 'k'.repeat(31) })).toThrow(/SESSION_SECRET must be at least 32 bytes/);
    expect(() => loadConfig({ DATA_DIR: tmp(), SESSION_SECRET: 'é'.repeat(15) })).toThrow(/SESSION_SECRET must be at least 32 bytes/);
    expect(loadConfig({ DATA_DIR: tmp(), SESSION_SECRET: 'k'.repeat(32) }).sessionSecret).toBe('k'.repeat(32));
  });

  it('applies the same rule to DATA_DIR/session-secret (final line breaks allowed), naming the file, never the secret', () => {
    const withFile = (content: string) => {
      const dir = tmp();
      writeFileSync(join(dir, 'session-secret'), content, { mode: 0o600 });
      return () => loadConfig({ DATA_DIR: dir });
    };
    const good = 'f'.repeat(40);
    expect(withFile(`${good}\n`)().sessionSecret).toBe(good);
    expect(withFile(`${good}\r\n`)().sessionSecret).toBe(good);
    expect(withFile('é'.repeat(16))().sessionSecret).toBe('é'.repeat(16));
    expect(withFile(' '.repeat(32))).toThrow(/session-secret is only whitespace/);
    expect(withFile(`  ${good}\n`)).toThrow(/session-secret starts or ends with whitespace/);
    expect(withFile(`${good} \n`)).toThrow(/session-secret starts or ends with whitespace/);
    expect(withFile(`${good}\n\n`)().sessionSecret).toBe(good);
    expect(withFile('k'.repeat(31))).toThrow(/session-secret must be at least 32 bytes/);
    expect(withFile(`  ${good}\n`)).not.toThrow(good);
  });

  it('names every bad variable at once', () => {
    expect(() => loadConfig({ DATA_DIR: tmp(), PORT: 'eighty', LLM_PROVIDER: 'magic', SESSION_SECRET: 'x'.repeat(40) }))
      .toThrow(/PORT.*LLM_PROVIDER|LLM_PROVIDER.*PORT/);
  });

  it('generates a secret when unset, persists it with mode 0600 and reuses it', () => {
    const dir = tmp();
    const first = loadConfig({ DATA_DIR: dir });
    const file = join(dir, 'session-secret');
    expect(first.sessionSecret.length).toBeGreaterThanOrEqual(32);
    expect(readFileSync(file, 'utf8')).toBe(first.sessionSecret);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadConfig({ DATA_DIR: dir }).sessionSecret).toBe(first.sessionSecret);
  });

  it('creates DATA_DIR owner-only, says where the secret came from, and makes a restored secret file owner-only again', () => {
    const dir = join(tmp(), 'new-data');
    expect(loadConfig({ DATA_DIR: dir }).sessionSecretSource).toBe('generated');
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const file = join(dir, 'session-secret');
    chmodSync(file, 0o644); // unpacked from a backup under umask 022
    expect(loadConfig({ DATA_DIR: dir }).sessionSecretSource).toBe('file');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(loadConfig({ DATA_DIR: dir, SESSION_SECRET: 'e'.repeat(40) }).sessionSecretSource).toBe('env');
  });

  it('defaults to SQLite under DATA_DIR and selects PostgreSQL from a postgres:// URL', () => {
    const dir = tmp();
    expect(loadConfig({ DATA_DIR: dir }).database).toEqual({ type: 'sqlite', path: join(dir, 'parley.sqlite') });
    expect(loadConfig({ DATA_DIR: dir, DATABASE_URL: 'postgres://u@db:5432/parley' }).database)
      .toEqual({ type: 'postgres', url: 'postgres://u@db:5432/parley' });
  });

  it('selects the offline provider without model config and openai with a key or base URL', () => {
    const dir = tmp();
    expect(loadConfig({ DATA_DIR: dir }).llm.provider).toBe('offline');
    expect(loadConfig({ DATA_DIR: dir, OPENAI_API_KEY: 'sk-x' }).llm.provider).toBe('openai');
    const local = loadConfig({ DATA_DIR: dir, OPENAI_BASE_URL: 'http://127.0.0.1:11434/v1' });
    expect(local.llm).toMatchObject({ provider: 'openai', apiKey: 'not-needed' });
    // A compose service name may hold underscores (llama_cpp): Node's URL and DNS take it.
    expect(loadConfig({ DATA_DIR: dir, OPENAI_BASE_URL: 'http://llama_cpp:8080/v1' }).llm.baseUrl).toBe('http://llama_cpp:8080/v1');
    expect(loadConfig({ DATA_DIR: dir, OPENAI_API_KEY: 'sk-x', LLM_PROVIDER: 'offline' }).llm.provider).toBe('offline');
  });

  it('makes a default instance id of at most 64 characters, keeping the end of a long host name (where pod names differ)', () => {
    expect(defaultInstanceId('vm', 4242)).toBe('vm-4242');
    const pod = `parley-backend-${'x'.repeat(40)}-7d9f8c6b5-q2w3e`;
    const id = defaultInstanceId(pod, 14660);
    expect(id).toHaveLength(64);
    expect(id.endsWith('-7d9f8c6b5-q2w3e-14660')).toBe(true);
    expect(loadConfig({ DATA_DIR: tmp() }).instanceId.length).toBeLessThanOrEqual(64);
  });

  it('reads numbers and lists from strings', () => {
    const c = loadConfig({ DATA_DIR: tmp(), PORT: '8080', RATE_LIMIT_CHAT_PER_MINUTE: '5', CORS_ORIGINS: 'https://a.example, https://b.example/' });
    expect(c.port).toBe(8080);
    expect(c.rateLimits.chatPerMinute).toBe(5);
    expect(c.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
  });

  it('allows 20 SSE streams per session by default and refuses a STREAM_MAX_PER_SESSION under 1, naming it', () => {
    const dir = tmp();
    expect(loadConfig({ DATA_DIR: dir }).stream.maxPerSession).toBe(20);
    expect(loadConfig({ DATA_DIR: dir, STREAM_MAX_PER_SESSION: '3' }).stream.maxPerSession).toBe(3);
    for (const bad of ['0', '-1', 'many', '2.5']) {
      expect(() => loadConfig({ DATA_DIR: dir, STREAM_MAX_PER_SESSION: bad })).toThrow(/STREAM_MAX_PER_SESSION/);
    }
  });

  it('caps a reply at 200,000 characters, or 16 per MAX_OUTPUT_TOKENS when more, and 10 minutes; refuses a bad MAX_REPLY_CHARS or UPSTREAM_MAX_DURATION_MS, naming it', () => {
    const dir = tmp();
    expect(loadConfig({ DATA_DIR: dir }).llm).toMatchObject({ maxReplyChars: 200_000, upstreamMaxDurationMs: 600_000 });
    expect(loadConfig({ DATA_DIR: dir, MODEL_CONTEXT_TOKENS: '128000', MAX_OUTPUT_TOKENS: '32000' }).llm.maxReplyChars).toBe(512_000);
    expect(loadConfig({ DATA_DIR: dir, MODEL_CONTEXT_TOKENS: '128000', MAX_OUTPUT_TOKENS: '32000', MAX_REPLY_CHARS: '5000' }).llm.maxReplyChars).toBe(5000);
    expect(loadConfig({ DATA_DIR: dir, UPSTREAM_MAX_DURATION_MS: '120000' }).llm.upstreamMaxDurationMs).toBe(120_000);
    for (const bad of ['0', '999', 'lots', '1e3.5']) {
      expect(() => loadConfig({ DATA_DIR: dir, MAX_REPLY_CHARS: bad })).toThrow(/Invalid env: MAX_REPLY_CHARS/);
      expect(() => loadConfig({ DATA_DIR: dir, UPSTREAM_MAX_DURATION_MS: bad })).toThrow(/Invalid env: UPSTREAM_MAX_DURATION_MS/);
    }
  });

  it('refuses a CORS_ORIGINS entry that is not an http(s) origin, naming the variable and the entry', () => {
    const dir = tmp();
    const cases: Array<[string, RegExp]> = [
      ['notaurl', /Invalid env: CORS_ORIGINS \(CORS_ORIGINS entry 1 of 1 \("notaurl"\) is not an origin/],
      ['http://a.com,garbage', /CORS_ORIGINS entry 2 of 2 \("garbage"\) is not an origin/],
      ['https://a.example, ftp://files.example', /CORS_ORIGINS entry 2 of 2 \("ftp:\/\/files.example"\)/],
      ['*', /CORS_ORIGINS entry 1 of 1 \("\*"\)/],
      ['javascript:alert(1)', /CORS_ORIGINS entry 1 of 1/],
    ];
    for (const [value, message] of cases) expect(() => loadConfig({ DATA_DIR: dir, CORS_ORIGINS: value }), value).toThrow(message);
    expect(loadConfig({ DATA_DIR: dir, CORS_ORIGINS: 'http://localhost:4200,, https://[::1]:8443' }).corsOrigins)
      .toEqual(['http://localhost:4200', 'https://[::1]:8443']);
  });

  it('refuses a TRUST_PROXY Express cannot compile, before anything runs, naming the variable and the entry', () => {
    const dir = tmp();
    const cases: Array<[string, RegExp]> = [
      ['garbage', /Invalid env: TRUST_PROXY \(TRUST_PROXY entry 1 of 1 \("garbage"\) is not an IP address, a CIDR/],
      ['10.0.0.0/33', /TRUST_PROXY entry 1 of 1 \("10.0.0.0\/33"\)/],
      ['loopback, 10.0.0.0/8, nonsense', /TRUST_PROXY entry 3 of 3 \("nonsense"\)/],
      ['loopback,', /TRUST_PROXY entry 2 of 2 \(""\)/],
      ['-1', /TRUST_PROXY entry 1 of 1/],
      ['TRUE', /TRUST_PROXY entry 1 of 1/],
    ];
    for (const [value, message] of cases) expect(() => loadConfig({ DATA_DIR: dir, TRUST_PROXY: value }), value).toThrow(message);
    const accepted: Array<[string, boolean | number | string]> = [
      ['loopback', 'loopback'], ['10.0.0.0/8, 172.16.0.0/12, fc00::/7', '10.0.0.0/8, 172.16.0.0/12, fc00::/7'],
      ['loopback, linklocal, uniquelocal, 172.28.0.10', 'loopback, linklocal, uniquelocal, 172.28.0.10'],
      ['10.0.0.0/255.0.0.0', '10.0.0.0/255.0.0.0'], ['::1', '::1'], ['2', 2], ['true', true], ['false', false], ['', false],
    ];
    for (const [value, trustProxy] of accepted) expect(loadConfig({ DATA_DIR: dir, TRUST_PROXY: value }).trustProxy, value).toBe(trustProxy);
  });

  it('refuses a HOST that is neither an IP address nor a host name, naming it; takes IPv4, IPv6 and names', () => {
    const dir = tmp();
    for (const bad of ['999.1.1.1', '10.0.0', '', 'not a host', 'a..b', '[::1]', 'http://0.0.0.0', '-lead.example', `${'a'.repeat(64)}.example`]) {
      expect(() => loadConfig({ DATA_DIR: dir, HOST: bad }), JSON.stringify(bad)).toThrow(/Invalid env: HOST \(HOST /);
    }
    expect(() => loadConfig({ DATA_DIR: dir, HOST: '[::1]' })).toThrow(/without brackets \(::1\)/);
    for (const good of ['0.0.0.0', '127.0.0.1', '::', '::1', 'fe80::1%eth0', 'localhost', 'parley-backend_1', 'box.example.com.']) {
      expect(loadConfig({ DATA_DIR: dir, HOST: good }).host).toBe(good);
    }
  });

  it('says, naming HOST, that a HOST name does not resolve, before anything starts; names HOST or PORT when listening fails', async () => {
    // .invalid never resolves (RFC 6761).
    expect(await hostLookupProblem('garbage.invalid', 3000)).toMatch(/^HOST \(garbage\.invalid\) does not resolve to an address \(E[A-Z_]+\): set HOST/);
    expect(await hostLookupProblem('localhost', 3000)).toBeUndefined();
    expect(await hostLookupProblem('999.1.1.1.invalid', 3000)).toMatch(/^HOST/);
    expect(await hostLookupProblem('0.0.0.0', 3000)).toBeUndefined();
    const where = { host: '10.9.9.9', port: 80 };
    const failed = (code: string) => Object.assign(new Error(`listen ${code}`), { code });
    expect(listenProblem(failed('EADDRNOTAVAIL'), where)).toMatch(/^HOST \(10\.9\.9\.9\) is not an address of this machine/);
    expect(listenProblem(failed('ENOTFOUND'), where)).toMatch(/^HOST \(10\.9\.9\.9\) does not resolve/);
    expect(listenProblem(failed('EADDRINUSE'), where)).toMatch(/^PORT \(80\) is in use on 10\.9\.9\.9/);
    expect(listenProblem(failed('EACCES'), where)).toMatch(/^PORT \(80\) may not be opened/);
    expect(listenProblem(new Error('else'), where)).toBeUndefined();
  });

  it(`refuses every *_MS setting over ${MAX_TIMER_MS} (Node fires a longer timer after 1 ms), naming it and the limit`, () => {
    const dir = tmp();
    const timers = settingNames().filter((name) => name.endsWith('_MS'));
    expect(timers).toEqual(expect.arrayContaining(['SESSION_PURGE_INTERVAL_MS', 'STREAM_HEARTBEAT_MS', 'SHUTDOWN_GRACE_MS', 'PDF_TIMEOUT_MS']));
    expect(timers.length).toBeGreaterThanOrEqual(14);
    for (const name of timers) {
      for (const bad of [String(MAX_TIMER_MS + 1), '2592000000', '99999999999']) {
        expect(() => loadConfig({ DATA_DIR: dir, [name]: bad }), `${name}=${bad}`)
          .toThrow(new RegExp(`Invalid env: ${name} \\(${name} must be at most 2147483647 \\(about 24\\.8 days, the longest timer Node\\.js keeps\\)\\)`));
      }
      expect(() => loadConfig({ DATA_DIR: dir, [name]: String(MAX_TIMER_MS) }), name).not.toThrow();
    }
  });

  it('bounds SESSION_TOKEN_TTL_SECONDS at 10 years, and UNSENT_FILE_TTL_HOURS and SESSION_INACTIVE_DAYS at 100, naming each', () => {
    const dir = tmp();
    expect(loadConfig({ DATA_DIR: dir, SESSION_TOKEN_TTL_SECONDS: '315360000' }).sessions.tokenTtlSeconds).toBe(315_360_000);
    for (const bad of ['315360001', '99999999999999']) {
      expect(() => loadConfig({ DATA_DIR: dir, SESSION_TOKEN_TTL_SECONDS: bad })).toThrow(/Invalid env: SESSION_TOKEN_TTL_SECONDS \(SESSION_TOKEN_TTL_SECONDS must be at most 315360000 \(10 years\)\)/);
    }
    expect(loadConfig({ DATA_DIR: dir, UNSENT_FILE_TTL_HOURS: '876000' }).limits.unsentFileTtlMs).toBe(876_000 * 3_600_000);
    expect(() => loadConfig({ DATA_DIR: dir, UNSENT_FILE_TTL_HOURS: '99999999999' })).toThrow(/UNSENT_FILE_TTL_HOURS must be at most 876000 \(100 years\)/);
    expect(loadConfig({ DATA_DIR: dir, SESSION_INACTIVE_DAYS: '36500' }).sessions.inactiveDays).toBe(36_500);
    expect(() => loadConfig({ DATA_DIR: dir, SESSION_INACTIVE_DAYS: '99999999999' })).toThrow(/SESSION_INACTIVE_DAYS must be at most 36500 \(100 years\)/);
  });

  it('refuses a MAX_OUTPUT_TOKENS, its default included, that leaves too little of MODEL_CONTEXT_TOKENS for the prompt, naming both with their values', () => {
    const dir = tmp();
    expect(() => loadConfig({ DATA_DIR: dir, MODEL_CONTEXT_TOKENS: '256' })).toThrow(new RegExp(
      'Invalid env: MAX_OUTPUT_TOKENS \\(MAX_OUTPUT_TOKENS \\(2048, the default\\) leaves 0 tokens of MODEL_CONTEXT_TOKENS \\(256\\) for the prompt.*'
      + 'at least 3072 for this MAX_OUTPUT_TOKENS\\), or MAX_OUTPUT_TOKENS to at most 128\\)$'));
    expect(() => loadConfig({ DATA_DIR: dir, MAX_OUTPUT_TOKENS: '32000' })).toThrow(/MAX_OUTPUT_TOKENS \(32000\) leaves 0 tokens of MODEL_CONTEXT_TOKENS \(16000, the default\)/);
    expect(() => loadConfig({ DATA_DIR: dir, MODEL_CONTEXT_TOKENS: '4096', MAX_OUTPUT_TOKENS: '3073' })).toThrow(/leaves 1023 tokens.*at most 3072\)$/);
    expect(() => loadConfig({ DATA_DIR: dir, MODEL_CONTEXT_TOKENS: '1000', MAX_OUTPUT_TOKENS: '501' })).toThrow(/at least 1002 .*at most 500\)$/);
    // Half the context, or more while 1,024 tokens are left; the defaults; a bad value is named alone.
    for (const [context, output] of [['256', '128'], ['700', '100'], ['4096', '2048'], ['4096', '3072'], ['200000', '128000'], ['16000', undefined], [undefined, '14976']]) {
      expect(() => loadConfig({ DATA_DIR: dir, MODEL_CONTEXT_TOKENS: context, MAX_OUTPUT_TOKENS: output }), `${context}/${output}`).not.toThrow();
    }
    expect(loadConfig({ DATA_DIR: dir }).llm).toMatchObject({ contextTokens: 16_000, maxOutputTokens: 2_048 });
    expect(() => loadConfig({ DATA_DIR: dir, MODEL_CONTEXT_TOKENS: 'big' })).toThrow(/^Invalid env: MODEL_CONTEXT_TOKENS \([^,]*\)$/);
  });

  it('takes PORT=0 (any free port, logged at start)', () => {
    expect(loadConfig({ DATA_DIR: tmp(), PORT: '0' }).port).toBe(0);
  });

  it('turns unready below 64 MiB free by default (READY_MIN_FREE_BYTES), far under the 1 GiB that pauses uploads', () => {
    const dir = tmp();
    expect(loadConfig({ DATA_DIR: dir }).limits).toMatchObject({ readyMinFreeBytes: 64 * 1024 * 1024, storageMinFreeBytes: 1024 * 1024 * 1024 });
    expect(loadConfig({ DATA_DIR: dir, READY_MIN_FREE_BYTES: '0' }).limits.readyMinFreeBytes).toBe(0);
    for (const bad of ['-1', 'lots', '1.5']) expect(() => loadConfig({ DATA_DIR: dir, READY_MIN_FREE_BYTES: bad })).toThrow(/Invalid env: READY_MIN_FREE_BYTES/);
  });

  it('prefixes Redis with parley: by default and takes another REDIS_PREFIX', () => {
    const dir = tmp();
    expect(loadConfig({ DATA_DIR: dir }).redisPrefix).toBe('parley:');
    expect(loadConfig({ DATA_DIR: dir, REDIS_PREFIX: 'staging.eu-1:tenant_2:' }).redisPrefix).toBe('staging.eu-1:tenant_2:');
    expect(loadConfig({ DATA_DIR: dir, REDIS_PREFIX: 'x'.repeat(64) }).redisPrefix).toBe('x'.repeat(64));
  });

  it('refuses a REDIS_PREFIX that is empty, too long or has other characters, naming the variable', () => {
    const dir = tmp();
    for (const bad of ['', 'x'.repeat(65), 'has space:', '{tenant}:', 'a*', 'préprod:', 'a\nb']) {
      expect(() => loadConfig({ DATA_DIR: dir, REDIS_PREFIX: bad }), JSON.stringify(bad)).toThrow(/Invalid env: REDIS_PREFIX/);
    }
  });
});
