import { Inject, Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ModuleRef } from '@nestjs/core';
import { ChatMetrics } from '../chat/chat-metrics.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { FileMetrics } from '../files/file-metrics.js';
import { MetricsService } from './metrics.service.js';

/**
 * Feeds Prometheus from the seams the chat and files modules expose (ChatMetrics, FileMetrics),
 * so those modules never import prom-client. Nest cannot override another
 * module's provider, so the bridge wraps the live instances' methods once at start; each
 * wrapper calls the original first, so those modules' own counters and tests are unaffected.
 */
@Injectable()
export class MetricsBridge implements OnModuleInit {
  private readonly logger = new Logger('Metrics');

  constructor(
    private readonly moduleRef: ModuleRef,
    private readonly metrics: MetricsService,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  onModuleInit(): void {
    const labels = { provider: this.config.llm.provider, model: this.config.llm.model };
    const chat = this.find(ChatMetrics);
    if (chat) {
      const { firstToken, tokens, generationEnded } = chat;
      chat.firstToken = (ms) => { firstToken.call(chat, ms); this.metrics.timeToFirstToken.observe(labels, ms / 1000); };
      chat.tokens = (count) => { tokens.call(chat, count); this.metrics.tokensStreamed.inc(labels, count); };
      chat.generationEnded = (status) => { generationEnded.call(chat, status); this.metrics.generations.inc({ status }); };
      const { upstreamFailed } = chat;
      chat.upstreamFailed = (code) => { upstreamFailed.call(chat, code); this.metrics.upstreamErrors.inc({ code }); };
    }
    const files = this.find(FileMetrics);
    if (files) {
      const { observeExtraction } = files;
      files.observeExtraction = (ms, fileType, outcome) => {
        observeExtraction.call(files, ms, fileType, outcome);
        this.metrics.fileExtraction.observe({ file_type: fileType, outcome }, ms / 1000);
      };
    }
  }

  private find<T>(token: string | symbol | (abstract new (...args: never[]) => T)): T | undefined {
    try {
      return this.moduleRef.get<T>(token, { strict: false });
    } catch {
      // The module is not part of this app (e.g. a test module): nothing to feed.
      this.logger.debug(`no ${String(typeof token === 'function' ? token.name : token)} to bridge`);
      return undefined;
    }
  }
}
