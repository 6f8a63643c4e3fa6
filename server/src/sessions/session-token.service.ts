import { createHmac, createSecretKey, type KeyObject, randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { COOKIE_MAX_AGE_MS } from '../common/session-cookie.js';

/** `idh`: the gateway identity the session was created for (TRUSTED_IDENTITY_HEADER), as a keyed digest. */
interface SessionClaims { sid: string; jti: string; exp: number; idh?: string }

/** What a valid token says: its session, the identity it is bound to when it is, and when it expires. */
export interface VerifiedToken { sid: string; idh?: string; expiresAtMs: number }

/** A token just signed, and when it expires. */
export interface SignedToken { token: string; expiresAt: Date }

/** Tokens verified lately, remembered until they expire; the oldest goes first past this many. */
const VERIFIED_CACHE_SIZE = 10_000;

/** Signs and verifies session tokens: HS256 only, so alg:none or RS/HS confusion is rejected. */
@Injectable()
export class SessionTokenService {
  /**
   * The secret as a KeyObject, not a string: given a string, jsonwebtoken first tries to parse it
   * as a PEM key and throws, which cost ~0.4 ms of CPU on every authenticated request (bench 1).
   */
  private readonly key: KeyObject;

  /**
   * Token → its session id and expiry, for tokens whose signature was checked: a client sends
   * the same token on every request, and checking it again cost ~0.3 ms of CPU each time (bench
   * 1). Keyed by the whole token, so only a byte-identical, once-verified token is ever a hit.
   */
  private readonly verified = new Map<string, VerifiedToken>();

  constructor(private readonly jwt: JwtService, @Inject(APP_CONFIG) private readonly config: AppConfig) {
    this.key = createSecretKey(Buffer.from(config.sessionSecret, 'utf8'));
  }

  /** A token for the session; bound to `identity` (the gateway's signed-in person) when there is one. */
  sign(sessionId: string, identity?: string): string {
    return this.issue(sessionId, identity).token;
  }

  /** As `sign`, with the time the token expires. */
  issue(sessionId: string, identity?: string): SignedToken {
    return this.signClaims({ sid: sessionId, ...(identity === undefined ? {} : { idh: this.identityDigest(identity) }) });
  }

  /**
   * A new token for the session a valid token names, bound to the same identity, for a full lifetime
   * from now: a session in use stays signed in (tokens expire SESSION_TOKEN_TTL_SECONDS after they are
   * signed, and the session's data outlives them). Null when `token` is not valid.
   */
  renew(token: string): SignedToken | null {
    const claims = this.verifyClaims(token);
    return claims ? this.signClaims({ sid: claims.sid, ...(claims.idh === undefined ? {} : { idh: claims.idh }) }) : null;
  }

  /**
   * Whether a valid token has lived past half its cookie's life, the point from which a cookie is
   * renewed on use (so one visit in each half-life keeps a browser signed in). The cookie's life is
   * the token's, or 400 days for a longer one (COOKIE_MAX_AGE_MS: a browser keeps no cookie longer).
   * False for an invalid token.
   */
  isRenewalDue(token: string, now = Date.now()): boolean {
    const expiresAtMs = this.verifyClaims(token)?.expiresAtMs;
    const ttlMs = this.config.sessions.tokenTtlSeconds * 1000;
    return expiresAtMs !== undefined && expiresAtMs - now < ttlMs - Math.min(ttlMs, COOKIE_MAX_AGE_MS) / 2;
  }

  private signClaims(claims: Omit<SessionClaims, 'jti' | 'exp'>): SignedToken {
    // exp set here (whole seconds), not by `expiresIn`: the time given back is the one the token carries.
    const exp = Math.floor(Date.now() / 1000) + this.config.sessions.tokenTtlSeconds;
    const token = this.jwt.sign({ ...claims, jti: randomUUID(), exp } satisfies SessionClaims, { algorithm: 'HS256', privateKey: this.key });
    return { token, expiresAt: new Date(exp * 1000) };
  }

  /**
   * An identity as a token carries it: keyed with the session secret, so a token shows no digest of an
   * e-mail address that anyone could compute from the address.
   */
  identityDigest(identity: string): string {
    return createHmac('sha256', this.key).update(`identity:${identity.trim()}`, 'utf8').digest('base64url').slice(0, 22);
  }

  /** The session id in a valid token, or null for anything else (expired, tampered, wrong alg). */
  verify(token: string): string | null {
    return this.verifyClaims(token)?.sid ?? null;
  }

  /** What a valid token says, or null for anything else (expired, tampered, wrong alg). */
  verifyClaims(token: string): VerifiedToken | null {
    const now = Date.now();
    const known = this.verified.get(token);
    if (known) {
      if (now < known.expiresAtMs) return known;
      this.verified.delete(token);
      return null;
    }
    try {
      // @nestjs/jwt types publicKey as string | Buffer but hands it to jsonwebtoken, which takes a KeyObject.
      const publicKey = this.key as unknown as Buffer;
      const claims = this.jwt.verify<Partial<SessionClaims>>(token, { algorithms: ['HS256'], publicKey });
      // Every token Parley signs expires; one without `exp`, signed with the secret by anything else, would be
      // valid for ever (jsonwebtoken checks `exp` only when it is there).
      if (typeof claims.sid !== 'string' || typeof claims.exp !== 'number') return null;
      const remembered: VerifiedToken = { sid: claims.sid, ...(typeof claims.idh === 'string' ? { idh: claims.idh } : {}), expiresAtMs: claims.exp * 1000 };
      if (this.verified.size >= VERIFIED_CACHE_SIZE) this.verified.delete(this.verified.keys().next().value!);
      this.verified.set(token, remembered);
      return remembered;
    } catch {
      // Every verification failure means the same thing to the caller: not signed in.
      return null;
    }
  }
}
