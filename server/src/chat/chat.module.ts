import { Module, type Provider } from '@nestjs/common';
import { ChatRateLimit } from '../common/rate-limit.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ConversationsModule } from '../conversations/conversations.module.js';
import { ChatMetrics } from './chat-metrics.js';
import { ChatController } from './chat.controller.js';
import { ChatService } from './chat.service.js';
import { GenerationRegistry, InMemoryGenerationRegistry } from './generation-registry.js';
import { GenerationService } from './generation.service.js';
import { RedisGenerationRegistry } from './redis-generation-registry.js';
import { OpenStreams } from './open-streams.js';
import { StreamLimit } from './stream-limit.js';
import { RedisConnection } from '../redis/redis-connection.js';
import { CHAT_PROVIDER, type ChatProvider } from './providers/chat-provider.js';
import { OfflineChatProvider } from './providers/offline-chat.provider.js';
import { OpenAiChatProvider } from './providers/openai-chat.provider.js';
import { ThreadedChatProvider } from './providers/threaded-chat.provider.js';

const providerFactory: Provider = {
  provide: CHAT_PROVIDER,
  inject: [APP_CONFIG],
  useFactory: (config: AppConfig): ChatProvider => {
    switch (config.llm.provider) {
      // Streams are read on a worker thread unless UPSTREAM_WORKER=false.
      case 'openai': return config.llm.upstreamWorker ? new ThreadedChatProvider(config.llm) : new OpenAiChatProvider(config.llm);
      case 'offline': return new OfflineChatProvider(config.llm.offlineTokenDelayMs);
    }
  },
};

@Module({
  imports: [ConversationsModule],
  controllers: [ChatController],
  providers: [
    providerFactory,
    // In memory for one instance; shared through Redis when REDIS_URL is set (several instances).
    {
      provide: GenerationRegistry,
      inject: [APP_CONFIG, RedisConnection],
      useFactory: (config: AppConfig, redis: RedisConnection): GenerationRegistry => (redis.client
        ? new RedisGenerationRegistry(redis, {
          instanceId: config.instanceId, leaseMs: config.stream.leaseMs,
          retentionMs: config.stream.replayRetentionMs, maxRetained: config.stream.replayMaxAnswers,
        })
        : new InMemoryGenerationRegistry(config.stream.replayRetentionMs, config.stream.replayMaxAnswers)),
    },
    GenerationService,
    ChatRateLimit,
    StreamLimit,
    OpenStreams,
    ChatService,
    ChatMetrics,
  ],
  exports: [CHAT_PROVIDER, GenerationService, ChatMetrics],
})
export class ChatModule {}
