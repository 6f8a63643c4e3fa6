import { Global, Module } from '@nestjs/common';
import { SessionsModule } from '../sessions/sessions.module.js';
import { MetricsBridge } from './metrics-bridge.js';
import { MetricsController } from './metrics.controller.js';
import { MetricsService } from './metrics.service.js';

/** Global: chat and files record into MetricsService wherever they run. */
@Global()
@Module({ imports: [SessionsModule], controllers: [MetricsController], providers: [MetricsService, MetricsBridge], exports: [MetricsService] })
export class MetricsModule {}
