import { createSecretKey } from 'node:crypto';
import { JwtService } from '@nestjs/jwt';
import type { AppConfig } from '../config/app-config.js';
import { sessionCookieMaxAge } from '../common/session-cookie.js';
import { SessionTokenService } from './session-token.service.js';

describe('SessionTokenService', () => {
  const config = { sessionSecret: 'a-test-secret-of-enough-length-0123456789', sessions: { tokenTtlSeconds: 60 } } as AppConfig;
  const make = (): SessionTokenService => new SessionTokenService(new JwtService(), config);
  afterEach(() => { vi.useRealTimers(); });

  it('accepts a verified token again until it expires, and not a second after', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-29T10:00:00.000Z'));
    const tokens = make();
    const token = tokens.sign('session-1');
    expect(tokens.verify(token)).toBe('session-1');
    vi.setSystemTime(new Date('2026-11-29T10:00:59.000Z'));
    expect(tokens.verify(token)).toBe('session-1');
    vi.setSystemTime(new Date('2026-11-29T10:01:00.000Z'));
    expect(tokens.verify(token)).toBeNull();
    expect(tokens.verify(token)).toBeNull();
  });

  it('refuses a token that differs from a verified one in any byte', () => {
    const tokens = make();
    const token = tokens.sign('session-1');
    expect(tokens.verify(token)).toBe('session-1');
    const [header, payload, signature] = token.split('.');
    const flipped = `${signature.slice(0, -2)}${signature.at(-2) === 'A' ? 'B' : 'A'}${signature.at(-1)}`;
    expect(tokens.verify(`${header}.${payload}.${flipped}`)).toBeNull();
    expect(tokens.verify(`${token} `)).toBeNull();
    // Another secret's token for the same session id.
    const other = new SessionTokenService(new JwtService(), { ...config, sessionSecret: 'another-secret-of-enough-length-987654' });
    expect(tokens.verify(other.sign('session-1'))).toBeNull();
  });

  it('renews a token for the same session and identity, a full lifetime from now; past half its life only is it due', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-29T10:00:00.000Z'));
    const tokens = make();
    const token = tokens.issue('session-1', 'ada@example.org');
    expect(token.expiresAt.toISOString()).toBe('2026-11-29T10:01:00.000Z');
    expect(tokens.isRenewalDue(token.token)).toBe(false);
    vi.setSystemTime(new Date('2026-11-29T10:00:30.000Z'));
    expect(tokens.isRenewalDue(token.token)).toBe(false);
    vi.setSystemTime(new Date('2026-11-29T10:00:31.000Z'));
    expect(tokens.isRenewalDue(token.token)).toBe(true);
    const renewed = tokens.renew(token.token)!;
    expect(renewed.expiresAt.toISOString()).toBe('2026-11-29T10:01:31.000Z');
    expect(tokens.verifyClaims(renewed.token)).toMatchObject({ sid: 'session-1', idh: tokens.identityDigest('ada@example.org') });
    expect(tokens.isRenewalDue(renewed.token)).toBe(false);
    // Nothing to renew from an invalid or expired token.
    expect(tokens.renew('not-a-token')).toBeNull();
    expect(tokens.isRenewalDue('not-a-token')).toBe(false);
    vi.setSystemTime(new Date('2026-11-29T10:01:00.000Z'));
    expect(tokens.renew(token.token)).toBeNull();
    expect(tokens.verify(renewed.token)).toBe('session-1');
  });

  it('renews a token lasting longer than a browser keeps a cookie (400 days) within the cookie\'s life, not at half the token\'s', () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const start = Date.parse('2026-11-29T10:00:00.000Z');
    vi.setSystemTime(start);
    const day = 86_400_000;
    const tokens = new SessionTokenService(new JwtService(), { ...config, sessions: { tokenTtlSeconds: 10 * 365 * 86_400 } } as AppConfig);
    const token = tokens.issue('session-1');
    expect(sessionCookieMaxAge(token.expiresAt, start)).toBe(400 * day);
    vi.setSystemTime(start + 200 * day);
    expect(tokens.isRenewalDue(token.token)).toBe(false);
    vi.setSystemTime(start + 201 * day);
    expect(tokens.isRenewalDue(token.token)).toBe(true);
    // At most a token's own life: one shorter than 400 days is the cookie's.
    expect(sessionCookieMaxAge(new Date(start + 30 * day), start)).toBe(30 * day);
  });

  it('refuses a token signed with the secret but without an expiry, or without a session id', () => {
    const tokens = make();
    const key = createSecretKey(Buffer.from(config.sessionSecret, 'utf8')) as unknown as Buffer;
    const jwt = new JwtService();
    const forged = (claims: object): string => jwt.sign(claims, { algorithm: 'HS256', privateKey: key });
    // The same claims with an expiry pass: the refusal is the missing `exp`, not the signature.
    expect(tokens.verify(forged({ sid: 'session-1', jti: 'j', exp: Math.floor(Date.now() / 1000) + 60 }))).toBe('session-1');
    expect(tokens.verify(forged({ sid: 'session-1', jti: 'j' }))).toBeNull();
    expect(tokens.verify(forged({ jti: 'j', exp: Math.floor(Date.now() / 1000) + 60 }))).toBeNull();
  });

  it('remembers a bounded number of tokens', () => {
    const tokens = make();
    for (let i = 0; i < 10_050; i++) expect(tokens.verify(tokens.sign(`s${i}`))).toBe(`s${i}`);
    expect((tokens as unknown as { verified: Map<string, unknown> }).verified.size).toBe(10_000);
  });
});
