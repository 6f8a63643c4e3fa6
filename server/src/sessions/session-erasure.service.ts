import { Injectable, Optional } from '@nestjs/common';
import { SqliteCheckpointService } from '../database/sqlite-checkpointer.js';
import { ConversationsService } from '../conversations/conversations.service.js';
import { FilesService } from '../files/files.service.js';
import { SessionsService } from './sessions.service.js';

/** What erasing a session removed. */
export interface Erased {
  conversations: number;
  files: number;
}

/**
 * Erases a session and everything in it, at its owner's request: the answers still generating are
 * stopped, the uploaded files deleted with their bytes (unless another session's row refers to the
 * same bytes), the conversations and their messages deleted, and the session itself, whose token
 * then stops working. In that order: the files first, since a file attached to a conversation
 * leaves with it but its bytes would wait for the storage sweep; the session last, which takes
 * anything created meanwhile with it (the schema cascades).
 */
@Injectable()
export class SessionErasure {
  constructor(
    private readonly sessions: SessionsService,
    private readonly conversations: ConversationsService,
    private readonly files: FilesService,
    @Optional() private readonly checkpoints?: SqliteCheckpointService,
  ) {}

  async erase(sessionId: string): Promise<Erased> {
    const files = await this.files.removeAllOf(sessionId);
    const conversations = await this.conversations.removeAllOf(sessionId);
    await this.sessions.erase(sessionId);
    // Nothing of it left in the SQLite WAL's older frames either (README: "What erasure leaves behind").
    await this.checkpoints?.scrub();
    return { conversations, files };
  }
}
