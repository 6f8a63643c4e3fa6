import { Body, Controller, Delete, Get, HttpCode, Inject, Param, Post, Req, Res } from '@nestjs/common';
import {
  ApiBody, ApiCookieAuth, ApiBearerAuth, ApiCreatedResponse, ApiHeader, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags,
} from '@nestjs/swagger';
import { ApiErrors } from '../common/api-errors.js';
import { CLEARS_SESSION_COOKIE, SETS_SESSION_COOKIE } from '../common/api-headers.js';
import { AppException } from '../common/app.exception.js';
import { ErrorCode } from '../common/error-code.js';
import type { Response } from 'express';
import { requestToken } from '../common/auth.guard.js';
import { gatewayIdentity } from '../common/gateway-identity.js';
import { sessionCookie, sessionCookieMaxAge } from '../common/session-cookie.js';
import { CurrentSession, Public, RateLimitBucket } from '../common/decorators.js';
import type { AppRequest, AuthContext } from '../common/request-context.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { CreatedSessionDto, CreateSessionDto, SessionDto, SessionEnvelopeDto, SessionIdParamDto } from './session.dto.js';
import type { Session } from './session.entity.js';
import { SessionErasure } from './session-erasure.service.js';
import type { SignedToken } from './session-token.service.js';
import { SessionsService } from './sessions.service.js';

@ApiTags('sessions')
@Controller('api/v1/sessions')
export class SessionsController {
  constructor(
    private readonly sessions: SessionsService,
    private readonly erasure: SessionErasure,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  @Post()
  @Public()
  @RateLimitBucket('session-create')
  @ApiOperation({ summary: 'Create an anonymous session; sets the session cookie (`session_token`, `__Host-session_token` over https) and returns the token' })
  @ApiBody({ type: CreateSessionDto, required: false })
  @ApiHeader({ name: 'X-Access-Token', required: false, description: 'Only where the deployment sets ACCESS_TOKEN (the access gate)' })
  @ApiCreatedResponse({ type: CreatedSessionDto, headers: SETS_SESSION_COOKIE })
  @ApiErrors(ErrorCode.Unauthorized)
  async create(
    @Body() body: CreateSessionDto, @Req() req: AppRequest, @Res({ passthrough: true }) res: Response,
  ): Promise<CreatedSessionDto> {
    const { session, token, expiresAt } = await this.sessions.create(
      body.user_agent ?? req.headers['user-agent'], req.ip, gatewayIdentity(req, this.config.trustedIdentityHeader),
    );
    return this.handOut(session, { token, expiresAt }, req, res);
  }

  @Post('current/token')
  @HttpCode(200)
  @ApiCookieAuth() @ApiBearerAuth()
  @ApiOperation({
    summary: 'A new token for the caller\'s session, valid for a full lifetime (SESSION_TOKEN_TTL_SECONDS) from now; sets the cookie too',
    description: 'Tokens expire a fixed time after they are signed; the session and its data do not. A Bearer client calls this before its '
      + 'token\'s `expires_at` to stay signed in; the previous token keeps working until it expires or the session is logged out. '
      + 'A browser need not: its cookie is renewed on use once past half its lifetime.',
  })
  @ApiOkResponse({ type: CreatedSessionDto, headers: SETS_SESSION_COOKIE })
  @ApiErrors(ErrorCode.SessionNotFound)
  async renewToken(@CurrentSession() caller: AuthContext, @Req() req: AppRequest, @Res({ passthrough: true }) res: Response): Promise<CreatedSessionDto> {
    // The guard has just checked the token this request carries.
    const renewed = this.sessions.renewToken(requestToken(req, this.config)?.token ?? '');
    if (!renewed) throw new AppException(ErrorCode.Unauthorized, 'Invalid or expired session');
    return this.handOut(await this.sessions.findOwn(caller.sessionId, caller.sessionId), renewed, req, res);
  }

  /** A session's token handed to the client: in the cookie (expiring with it) and in the body. */
  private handOut(session: Session, { token, expiresAt }: SignedToken, req: AppRequest, res: Response): CreatedSessionDto {
    const cookie = sessionCookie(req, this.config);
    res.cookie(cookie.name, token, { ...cookie.options, maxAge: sessionCookieMaxAge(expiresAt) });
    return { session: SessionDto.from(session), token, expires_at: expiresAt.toISOString() };
  }

  @Get('current')
  @ApiCookieAuth() @ApiBearerAuth()
  @ApiOperation({ summary: 'The caller\'s own session (its id, for DELETE /sessions/{id}, without keeping the creation\'s answer)' })
  @ApiOkResponse({ type: SessionEnvelopeDto })
  @ApiErrors(ErrorCode.SessionNotFound)
  async current(@CurrentSession() caller: AuthContext): Promise<SessionEnvelopeDto> {
    return { session: SessionDto.from(await this.sessions.findOwn(caller.sessionId, caller.sessionId)) };
  }

  @Get(':id')
  @ApiCookieAuth() @ApiBearerAuth()
  @ApiOperation({ summary: 'Validate one\'s own session' })
  @ApiOkResponse({ type: SessionEnvelopeDto })
  @ApiErrors(ErrorCode.SessionNotFound)
  async findOne(@Param() { id }: SessionIdParamDto, @CurrentSession() caller: AuthContext): Promise<SessionEnvelopeDto> {
    return { session: SessionDto.from(await this.sessions.findOwn(caller.sessionId, id)) };
  }

  @Delete('current')
  @HttpCode(204)
  @ApiCookieAuth() @ApiBearerAuth()
  @ApiOperation({
    summary: 'Log out: revoke the session token and clear the cookie; answers the session still generates are stopped (saved as stopped)',
    description: 'The session\'s data stays until the inactive-session purge (SESSION_INACTIVE_DAYS), and no token of it can erase it any more: to have it gone, erase the session (DELETE /api/v1/sessions/{id}) instead, which ends it too.',
  })
  @ApiNoContentResponse({ headers: CLEARS_SESSION_COOKIE })
  async logout(@CurrentSession() caller: AuthContext, @Req() req: AppRequest, @Res({ passthrough: true }) res: Response): Promise<void> {
    await this.sessions.revoke(caller.sessionId);
    const cookie = sessionCookie(req, this.config);
    res.clearCookie(cookie.name, cookie.options);
  }

  @Delete(':id')
  @HttpCode(204)
  @ApiCookieAuth() @ApiBearerAuth()
  @ApiOperation({
    summary: 'Erase one\'s own session and everything in it: answers still generating are stopped; conversations, messages '
      + 'and uploaded files are deleted (with their stored bytes); the token stops working and the cookie is cleared',
  })
  @ApiNoContentResponse({ headers: CLEARS_SESSION_COOKIE })
  @ApiErrors(ErrorCode.SessionNotFound)
  async erase(
    @Param() { id }: SessionIdParamDto, @CurrentSession() caller: AuthContext, @Req() req: AppRequest, @Res({ passthrough: true }) res: Response,
  ): Promise<void> {
    // Another session's id is 404, exactly like a missing one; nothing of it is touched.
    if (id !== caller.sessionId) throw new AppException(ErrorCode.SessionNotFound, 'Session not found');
    await this.erasure.erase(id);
    const cookie = sessionCookie(req, this.config);
    res.clearCookie(cookie.name, cookie.options);
  }
}
