import { existsSync } from 'node:fs';
import { type DynamicModule, Module, type Provider } from '@nestjs/common';
import { APP_FILTER, APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { ServeStaticModule } from '@nestjs/serve-static';
import { ThrottlerModule } from '@nestjs/throttler';
import { AccessGateController } from './common/access-gate.controller.js';
import { AccessGateGuard } from './common/access-gate.js';
import { AllExceptionsFilter } from './common/all-exceptions.filter.js';
import { UndeclaredQueryInterceptor } from './common/undeclared-query.interceptor.js';
import { AuthGuard, SessionRenewalGuard } from './common/auth.guard.js';
import { CsrfGuard } from './common/csrf.guard.js';
import { AppThrottlerGuard, AuthFailureLimit, throttlerOptions } from './common/rate-limit.js';
import { MemoryThrottlerStorage } from './common/memory-throttler-storage.js';
import { RedisThrottlerStorage } from './common/redis-throttler-storage.js';
import type { AppConfig } from './config/app-config.js';
import { ChatModule } from './chat/chat.module.js';
import { ConfigModule } from './config/config.module.js';
import { ConversationsModule } from './conversations/conversations.module.js';
import { DatabaseModule } from './database/database.module.js';
import { FilesModule } from './files/files.module.js';
import { HealthModule } from './health/health.module.js';
import { MetricsModule } from './metrics/metrics.module.js';
import { RedisConnection } from './redis/redis-connection.js';
import { RedisModule } from './redis/redis.module.js';
import { SessionsModule } from './sessions/sessions.module.js';
import { assetCacheControl } from './common/precompressed-assets.js';

/** Paths whose last segment has no file extension: the SPA's routes. */
const SPA_ROUTE = /\/[^/.]*$/;

@Module({})
export class AppModule {
  static forRoot(config: AppConfig): DynamicModule {
    const spa = existsSync(config.clientDir)
      ? [ServeStaticModule.forRoot({
        rootPath: config.clientDir,
        // /metrics/ (any path under it) is not the SPA's either: with strict routing the scrape route does not take it.
        exclude: ['/api/{*path}', '/metrics', '/metrics/{*path}'],
        // The SPA answers its own routes (/c/<id>), never a file that is not there: a stale tab's
        // lazy chunk (main-<hash>.js after a deploy) got index.html as 200 and failed as a MIME
        // error; now it is a 404, as behind nginx. A last segment with an extension is a file.
        renderPath: SPA_ROUTE,
        serveStaticOptions: {
          index: false,
          setHeaders: (res: { setHeader: (name: string, value: string) => void }, path: string) => res.setHeader('Cache-Control', assetCacheControl(path)),
        },
      })]
      : [];
    // Global guards run in this order: who is calling, is it same-origin, is it within its limits,
    // may it pass the deployment's access gate (after the limits, so access tokens cannot be guessed fast);
    // then, for a request all of them let through, its cookie renewed when due.
    const guards: Provider[] = [
      { provide: APP_GUARD, useClass: AuthGuard },
      { provide: APP_GUARD, useClass: CsrfGuard },
      { provide: APP_GUARD, useClass: AppThrottlerGuard },
      { provide: APP_GUARD, useClass: AccessGateGuard },
      // Last: a request any check refused does not get its cookie renewed.
      { provide: APP_GUARD, useClass: SessionRenewalGuard },
      AuthFailureLimit,
    ];
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        DatabaseModule.forRoot(config),
        RedisModule,
        // With REDIS_URL the counters are shared by every instance; otherwise they stay in memory.
        ThrottlerModule.forRootAsync({
          inject: [RedisConnection],
          useFactory: (redis: RedisConnection) => throttlerOptions(config, redis.client ? new RedisThrottlerStorage(redis.client, redis.prefix) : new MemoryThrottlerStorage()),
        }),
        SessionsModule,
        ConversationsModule,
        ChatModule,
        FilesModule,
        HealthModule,
        MetricsModule,
        ...spa,
      ],
      controllers: [AccessGateController],
      providers: [
        { provide: APP_FILTER, useClass: AllExceptionsFilter },
        ...guards,
        // After the guards: a query parameter the operation does not take is refused (400).
        { provide: APP_INTERCEPTOR, useClass: UndeclaredQueryInterceptor },
      ],
    };
  }
}
