import { join } from 'node:path';
import { Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import { CHAT_ATTACHMENTS } from '../chat/chat-attachments.js';
import { APP_CONFIG, type AppConfig } from '../config/app-config.js';
import { ConversationsModule } from '../conversations/conversations.module.js';
import { FileMetrics } from './file-metrics.js';
import { FileScanner } from './file-scanner.js';
import { FileStorage, LocalDiskStorage } from './file-storage.js';
import { FileSweepJob } from './file-sweep.job.js';
import { FileUpload } from './file-upload.entity.js';
import { FilesController } from './files.controller.js';
import { FilesService } from './files.service.js';
import { SessionUploads } from './session-uploads.js';
import { TextExtractor } from './text-extractor.js';
import { UploadInterceptor } from './upload.interceptor.js';

@Module({
  imports: [TypeOrmModule.forFeature([FileUpload]), ConversationsModule],
  controllers: [FilesController],
  providers: [
    FilesService, TextExtractor, FileScanner, FileMetrics, FileSweepJob, UploadInterceptor, SessionUploads,
    {
      provide: FileStorage,
      inject: [APP_CONFIG],
      useFactory: async (config: AppConfig): Promise<FileStorage> => {
        const storage = new LocalDiskStorage(join(config.dataDir, 'uploads'));
        await storage.init();
        return storage;
      },
    },
    // The chat's seam (server/src/chat/chat-attachments.ts): validate and attach a message's files.
    { provide: CHAT_ATTACHMENTS, useExisting: FilesService },
  ],
  exports: [FilesService, FileMetrics, CHAT_ATTACHMENTS],
})
export class FilesModule {}
