import { randomUUID } from 'node:crypto';
import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';

interface SessionClaims { sid: string; jti: string }

/** Signs and verifies session tokens: HS256 only, so alg:none or RS/HS confusion is rejected. */
@Injectable()
export class SessionTokenService {
  constructor(private readonly jwt: JwtService, @Inject(APP_CONFIG) private readonly config: AppConfig) {}

  sign(sessionId: string): string {
    return this.jwt.sign({ sid: sessionId, jti: randomUUID() } satisfies SessionClaims, {
      algorithm: 'HS256', expiresIn: this.config.sessions.tokenTtlSeconds, secret: this.config.sessionSecret,
    });
  }

  /** The session id in a valid token, or null for anything else (expired, tampered, wrong alg). */
  verify(token: string): string | null {
    try {
      const claims = this.jwt.verify<Partial<SessionClaims>>(token, { algorithms: ['HS256'], secret: this.config.sessionSecret });
      return typeof claims.sid === 'string' ? claims.sid : null;
    } catch {
      // Every verification failure means the same thing to the caller: not signed in.
      return null;
    }
  }
}
