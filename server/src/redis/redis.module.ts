import { Global, Module } from '@nestjs/common';
import { RedisConnection } from './redis-connection.js';
import { DistributedLock } from './redis-lock.js';

/** Global so that the throttler, metrics, health and the chat registry share one connection. */
@Global()
@Module({
  providers: [
    RedisConnection,
    { provide: DistributedLock, inject: [RedisConnection], useFactory: (c: RedisConnection) => new DistributedLock(c) },
  ],
  exports: [RedisConnection, DistributedLock],
})
export class RedisModule {}
