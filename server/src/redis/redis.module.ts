import { Global, Module } from '@nestjs/common';
import { RedisConnection } from './redis-connection.js';

/** Global so that the throttler, metrics, health and the chat registry share one connection. */
@Global()
@Module({ providers: [RedisConnection], exports: [RedisConnection] })
export class RedisModule {}
